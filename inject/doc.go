// Package inject models the WFP vSwitch injection API: injection handles
// (FwpsInjectionHandleCreate0/Destroy0), FwpsInjectvSwitchEthernetIngressAsync0,
// FwpsQueryPacketInjectionState0, and the allocate/clone/reference calls,
// to the numbered rules of shared/spec/wfp-vswitch.md (cited as R1..R41,
// R22a, R22b, G1..G7 in the doc comments and the tests).
//
// The data flow:
//
//	callout worker --InjectVSwitchEthernetIngressAsync--> validate whole chain
//	    (G1, R10-R22b) --all or nothing--> tag each NBL (handle id, contexts,
//	    source port/NIC, InFlight) --> Switch.Inject (the switch's multi-
//	    producer injection ring) --> return STATUS_SUCCESS; nothing else runs
//	switch: the chain is classified again at ingress (R21), forwarded, sent
//	    or dropped; each finished NBL gets its Status
//	completion stage --Completer.Complete(batch)--> per NBL: cut Next (G3),
//	    call completionFn once (R18) or hand the original back (G4), then
//	    release the handle's pending count so Destroy can return (R4)
//
// The package never calls a completion function inside an inject call
// (R22a); completions run only on whichever goroutine calls
// Completer.Complete, which in the dataplane is the completion stage.
// The switch side is the Switch interface; the sub-package injecttest has a
// small one for tests, including a strict mode that completes each chain
// before the inject call returns, which makes callers that touch packets
// after STATUS_SUCCESS fail visibly.
package inject
