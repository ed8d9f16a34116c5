// Package dataplane is the virtual switch: ports, the classify engine with
// callouts at the ingress and egress vSwitch Ethernet layers, the absorb
// hand-off to callout workers, the ingress reinject path, forwarding and
// the completion stage, run as poll-mode stages on pinned lcores.
//
// One pipeline per queue:
//
//	ports --Receive--> ingress: parse once, learn the source MAC, classify
//	                   (ingress layer); PERMIT -> fwd link; BLOCK -> retire;
//	                   BLOCK+ABSORB -> the callout's absorb link
//	absorb worker:     the callout's Worker inspects out of band, then
//	                   reinjects (inject API -> the queue's injection link),
//	                   discards (-> retire) or holds
//	ingress again:     injected chains are tagged and classified again; the
//	                   callout sees InjectedBySelf and PERMITs (R21, R25)
//	egress:            FDB lookup or flood (clones for the extra copies,
//	                   RECLASSIFY_MULTI_DESTINATION, R26), classify (egress
//	                   layer) per copy, Transmit to the port
//	completion:        Reap from the ports + the retire link; flood copies
//	                   freed, a list waits for its copies, injected lists
//	                   completed once each (R18), frames back to the pool
//
// Every link is a ring from package ring (SPSC, or MPSC where several
// stages feed one), or, for the baseline, a channel of 32-packet batches.
// Batches cross every boundary; no stage allocates per packet.
//
// Modes: in run-to-completion (ModeRTC) one pinned lcore per queue polls
// every stage of the queue in turn; in pipelined mode (ModePipeline) the
// ingress stage has an lcore of its own and the others share a second.
// Stop drains per R7 and checks that every frame is back in the pool.
//
// Ports are Drivers: dataplane/memport (in-memory generator and sink) is
// here; the AF_XDP driver plugs into the same interface.
package dataplane
