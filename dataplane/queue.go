package dataplane

import (
	"fmt"
	"time"

	"github.com/wfpxdp/wfpxdp/inject"
	"github.com/wfpxdp/wfpxdp/nbl"
)

// queue is one pipeline: the stages of one RX queue and the links between
// them.
//
//	ports --RX--> ingress --fwd--> egress --TX--> ports
//	                |  ^                |
//	        absorb  v  | inj (MPSC)     | absorb
//	             workers (per callout) <+
//	ingress, egress, workers --retire (MPSC)--> completion <--reap-- ports
type queue struct {
	sw  *Switch
	idx int

	fwd     link[*nbl.NBL]         // ingress -> egress
	fwdInj  link[*nbl.NBL]         // reinject -> egress (pipelined mode only)
	inj     link[inject.Injection] // inject calls -> ingress (MPSC)
	retireL link[*nbl.NBL]         // drops and discards -> completion (MPSC)

	ingress *ingressStage
	// reinj classifies injected lists at ingress on the lcore of the
	// workers and egress (pipelined mode only; in RTC the ingress stage
	// does): what a worker reinjects is classified and forwarded where it
	// is, instead of crossing to the ingress lcore and back.
	reinj      *ingressStage
	egress     *egressStage
	completion *completionStage
	workers    []*Worker // by callout id

	// Descriptor caches, one set per lcore the queue's stages run on: the
	// ingress lcore's (rx: it takes frames) and the other stages' (tx:
	// completion returns frames, egress clones, workers allocate). In RTC
	// both are the same set: frames completed are received again without
	// touching the shared pool.
	rxCaches, txCaches *cacheSet

	// Counters, like the caches, one set per lcore: the ingress stage's
	// (rx) and the other stages' (tx), so that in pipelined mode no
	// counter line moves between cores. In RTC both are the same set.
	rxCnt, txCnt *stageCounters
}

func newQueue(sw *Switch, idx int, callouts []*calloutEntry) (*queue, error) {
	cfg := sw.cfg
	q := &queue{sw: sw, idx: idx}
	q.rxCaches = newCacheSet(sw, cfg.Batch)
	q.txCaches = q.rxCaches
	q.rxCnt = &stageCounters{}
	q.txCnt = q.rxCnt
	if cfg.Mode == ModePipeline {
		q.txCaches = newCacheSet(sw, cfg.Batch)
		q.txCnt = &stageCounters{}
	}
	var err error
	if q.fwd, err = newLink[*nbl.NBL](cfg.Link, cfg.RingSize, false); err != nil {
		return nil, err
	}
	if q.inj, err = newLink[inject.Injection](cfg.Link, cfg.RingSize, true); err != nil {
		return nil, err
	}
	// The retire link can hold every descriptor there is, so a drop never
	// has nowhere to go.
	all := 1
	for all < cfg.Frames+cfg.Reserve {
		all <<= 1
	}
	if cfg.Link == LinkChan {
		q.retireL = newChanOneLink[*nbl.NBL](all)
	} else if q.retireL, err = newLink[*nbl.NBL](cfg.Link, all, true); err != nil {
		return nil, err
	}
	if err := q.addWorkers(callouts); err != nil {
		return nil, err
	}
	q.ingress = newIngress(q, q.rxCnt, q.rxCaches.frames, q.fwd, int(LayerIngress))
	if cfg.Mode == ModePipeline {
		if q.fwdInj, err = newLink[*nbl.NBL](cfg.Link, cfg.RingSize, false); err != nil {
			return nil, err
		}
		q.reinj = newIngress(q, q.txCnt, q.txCaches.frames, q.fwdInj, absorbReinject)
		q.ingress.rxOnly = true
	}
	q.egress = newEgress(q)
	q.completion = newCompletion(q)
	return q, nil
}

// addWorkers gives the queue a worker for each of callouts (registered
// after the ones it has), and its classifiers an absorb link to each. Only
// while the switch is stopped.
func (q *queue) addWorkers(callouts []*calloutEntry) error {
	cfg := q.sw.cfg
	for _, ce := range callouts {
		w := &Worker{q: q, ce: ce, reserve: q.txCaches.reserve, switchID: q.sw.id, discardBuf: make([]*nbl.NBL, 0, cfg.Batch),
			scratch: make([]*nbl.NBL, 0, cfg.Batch), reinj: make([]*nbl.NBL, 0, cfg.Batch)}
		for layer := range w.absorbIn {
			var err error
			if w.absorbIn[layer], err = newLink[*nbl.NBL](cfg.Link, cfg.RingSize, false); err != nil {
				return err
			}
		}
		q.workers = append(q.workers, w)
		for _, c := range []*classifier{q.ingressCls(), q.reinjCls(), q.egressCls()} {
			if c != nil {
				c.addWorker(w)
			}
		}
	}
	return nil
}

func (q *queue) ingressCls() *classifier {
	if q.ingress == nil {
		return nil
	}
	return q.ingress.cls
}

func (q *queue) reinjCls() *classifier {
	if q.reinj == nil {
		return nil
	}
	return q.reinj.cls
}

func (q *queue) egressCls() *classifier {
	if q.egress == nil {
		return nil
	}
	return q.egress.cls
}

// cacheSet is the descriptor caches of one lcore.
type cacheSet struct {
	frames, reserve *nbl.Cache
}

// newCacheSet sizes the caches to hold a few bursts, but never more than
// an eighth of the pool: descriptors idle in one lcore's cache are missing
// from every other's (DPDK's rule: pool size well above the sum of the
// caches).
func newCacheSet(sw *Switch, batch int) *cacheSet {
	size := func(pool int) int { return max(2, min(4*batch, pool/8)) }
	return &cacheSet{
		frames:  sw.arena.Frames().NewCache(size(sw.arena.Frames().Size())),
		reserve: sw.arena.Reserve().NewCache(size(sw.arena.Reserve().Size())),
	}
}

func (c *cacheSet) flush() {
	c.frames.Flush()
	c.reserve.Flush()
}

// retire hands lists whose journey ended to the completion stage. Never
// fails: the retire link holds every descriptor there is.
func (q *queue) retire(lists []*nbl.NBL) {
	if n := q.retireL.EnqueueBurst(lists); n != len(lists) {
		panic(fmt.Sprintf("dataplane: retire link full (%d of %d): descriptor accounting is broken", n, len(lists)))
	}
}

// drop counts lists dropped for reason in cnt (the calling stage's) and
// retires them with status.
func (q *queue) drop(cnt *stageCounters, lists []*nbl.NBL, reason DropReason, status inject.Status) {
	for _, l := range lists {
		l.Status = int32(status)
	}
	q.dropped(cnt, lists, reason)
	q.retire(lists)
}

// dropped counts lists dropped for reason in cnt and captures them.
func (q *queue) dropped(cnt *stageCounters, lists []*nbl.NBL, reason DropReason) {
	cnt.drops[reason].add(len(lists))
	q.sw.cfg.Capture.record(lists, CaptureDropped, reason)
}

// nowNS is the monotonic clock the stages stamp lists with, read once per
// batch.
var epoch = time.Now()

func nowNS() int64 { return int64(time.Since(epoch)) }

// Now returns the monotonic clock NBL.Stamps are in (with
// Config.StageStamps), for a port or tool that measures against them.
func Now() int64 { return nowNS() }
