# A dummynet delay profile: extra air time per packet on a busy Wi-Fi
# link (contention and retries), written for examples/19-dummynet-profile.toml
# in ipfw's format. Each packet's transmission takes its bytes at `bw`
# plus a sample of this distribution; samples at or above loss-level
# (the slowest 2 %, the retry limit reached) are dropped after their air
# time.
name        wifi-busy
bw          20Mbit/s
loss-level  0.98
samples     100

prob delay
0.00  0
0.40  0
0.60  1
0.80  3
0.90  6
0.95  10
0.98  20
1.00  40
