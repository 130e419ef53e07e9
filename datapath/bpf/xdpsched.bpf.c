// SPDX-License-Identifier: GPL-2.0
/*
 * xdpsched's XDP program, one instance per port.
 *
 * While xdpsched runs, its AF_XDP socket for the RX queue is in xsks_map and
 * every frame goes to it. If xdpsched dies, the kernel drops the socket from
 * xsks_map and the program fails open, like a hardware middlebox's bypass:
 * frames go straight to the peer port in peer_map (bridge mode), or, with no
 * peer (reflect mode), to the kernel stack.
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

/* Frames steered: [0] to the AF_XDP socket, [1] failed open. */
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
	/* No socket (xdpsched not running): fail open. An empty peer_map
	 * entry makes this XDP_PASS. */
	count(1);
	return bpf_redirect_map(&peer_map, 0, XDP_PASS);
}

char _license[] SEC("license") = "GPL";
