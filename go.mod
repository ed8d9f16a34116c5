module github.com/wfpxdp/wfpxdp

go 1.26.0

require (
	github.com/HdrHistogram/hdrhistogram-go v1.4.0
	golang.org/x/sys v0.50.0
)

require github.com/cilium/ebpf v0.22.0

require (
	github.com/asavie/xdp v0.3.3 // indirect
	github.com/vishvananda/netlink v1.1.0 // indirect
	github.com/vishvananda/netns v0.0.0-20191106174202-0a2b9b5464df // indirect
)
