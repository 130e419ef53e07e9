// SPDX-License-Identifier: GPL-2.0
/*
 * xdpsched's XDP program, one instance per port.
 *
 * While xdpsched runs, its AF_XDP socket for the RX queue is in xsks_map and
 * every frame goes to it. If xdpsched dies, the kernel drops the socket from
 * xsks_map and the program does what --fail-open chose, like a hardware
 * middlebox's bypass: frames go straight to the peer port in peer_map
 * ("redirect"), or to the kernel stack (peer_map empty: "bridge", where a
 * kernel bridge of the two ports forwards them, and reflect mode), or are
 * dropped (fail_mode[0] == FAIL_CLOSED: "closed").
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_DEVMAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} peer_map SEC(".maps");

/* FAIL_CLOSED in fail_mode[0]: drop frames that find no socket. */
#define FAIL_CLOSED 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fail_mode SEC(".maps");

/* Frames steered: [0] to the AF_XDP socket, [1] found no socket (failed
 * open, or dropped when failing closed). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &i);

	if (c)
		*c += 1;
}

SEC("xdp")
int xdpsched_redirect(struct xdp_md *ctx)
{
	__u32 q = ctx->rx_queue_index;

	if (bpf_map_lookup_elem(&xsks_map, &q)) {
		count(0);
		return bpf_redirect_map(&xsks_map, q, XDP_PASS);
	}
	/* No socket (xdpsched not running). */
	count(1);
	__u32 zero = 0;
	__u32 *mode = bpf_map_lookup_elem(&fail_mode, &zero);

	if (mode && *mode == FAIL_CLOSED)
		return XDP_DROP;
	/* Fail open: an empty peer_map entry makes this XDP_PASS. */
	return bpf_redirect_map(&peer_map, 0, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
