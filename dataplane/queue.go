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
	pl  *plane
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

func newQueue(pl *plane, idx int) (q *queue, err error) {
	cfg := pl.cfg
	q = &queue{pl: pl, idx: idx}
	q.rxCaches = newCacheSet(pl.arena, cfg.Batch)
	q.txCaches = q.rxCaches
	q.rxCnt = &stageCounters{}
	q.txCnt = q.rxCnt
	if cfg.Mode == ModePipeline {
		q.txCaches = newCacheSet(pl.arena, cfg.Batch)
		q.txCnt = &stageCounters{}
	}
	defer func() {
		if err != nil { // the caches are registered with the pools: undo
			q.rxCaches.release()
			if q.txCaches != q.rxCaches {
				q.txCaches.release()
			}
		}
	}()
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
	if err := q.addWorkers(pl.callouts); err != nil {
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

// addWorkers gives the queue a worker for each callout, with its absorb
// links; the classifiers, built after, get a link to each.
func (q *queue) addWorkers(callouts []*calloutEntry) error {
	cfg := q.pl.cfg
	for _, ce := range callouts {
		w := &Worker{q: q, ce: ce, reserve: q.txCaches.reserve, switchID: q.pl.id, discardBuf: make([]*nbl.NBL, 0, cfg.Batch),
			scratch: make([]*nbl.NBL, 0, cfg.Batch), reinj: make([]*nbl.NBL, 0, cfg.Batch)}
		for layer := range w.absorbIn {
			var err error
			if w.absorbIn[layer], err = newLink[*nbl.NBL](cfg.Link, cfg.RingSize, false); err != nil {
				return err
			}
		}
		q.workers = append(q.workers, w)
	}
	return nil
}

// cacheSet is the descriptor caches of one lcore.
type cacheSet struct {
	frames, reserve *nbl.Cache
}

// newCacheSet sizes the caches to hold a few bursts, but never more than
// an eighth of the pool: descriptors idle in one lcore's cache are missing
// from every other's (DPDK's rule: pool size well above the sum of the
// caches).
func newCacheSet(arena *nbl.Arena, batch int) *cacheSet {
	size := func(pool int) int { return max(2, min(4*batch, pool/8)) }
	return &cacheSet{
		frames:  arena.Frames().NewCache(size(arena.Frames().Size())),
		reserve: arena.Reserve().NewCache(size(arena.Reserve().Size())),
	}
}

func (c *cacheSet) flush() {
	c.frames.Flush()
	c.reserve.Flush()
}

// release empties the caches into their pools and unregisters them.
func (c *cacheSet) release() {
	c.frames.Release()
	c.reserve.Release()
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
	q.pl.cfg.Capture.record(lists, CaptureDropped, reason)
}

// nowNS is the monotonic clock the stages stamp lists with, read once per
// batch.
var epoch = time.Now()

func nowNS() int64 { return int64(time.Since(epoch)) }

// Now returns the monotonic clock NBL.Stamps are in (with
// Config.StageStamps), for a port or tool that measures against them.
func Now() int64 { return nowNS() }
