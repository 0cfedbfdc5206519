package analyze

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Run reads every record of src and analyzes the spans. It returns an error
// only when the context ends, when src is nil, or when src fails before
// yielding any record; bad data (undecodable records, invalid spans, a
// source failing part-way, ...) becomes warnings in the Result. The Result
// is deterministic: the same records in the same order give the same
// Result.
func Run(ctx context.Context, opts Options, src RecordSource) (*Result, error) {
	if src == nil {
		return nil, errors.New("analyze: no record source")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	began := time.Now()
	ar := &arena{}
	defer ar.release()
	st := newStore()
	st.ar = ar
	dec := &decoder{st: st}
	var in inputStats
	nextProgress := int64(progressEvery)
	srcErr := src(func(rec []byte) error {
		if in.records&255 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		in.records++
		in.bytes += int64(len(rec))
		if err := dec.request(rec); err != nil {
			in.bad++
		}
		if opts.Progress != nil && dec.stats.spans >= nextProgress {
			opts.Progress(dec.stats.spans)
			nextProgress = dec.stats.spans + progressEvery
		}
		return nil
	})
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("analyze spans: %w", err)
	}
	if srcErr != nil {
		if in.records == 0 {
			return nil, fmt.Errorf("read span records: %w", srcErr)
		}
		in.srcErr = srcErr
	}
	if opts.Progress != nil {
		opts.Progress(dec.stats.spans)
	}
	in.decode = dec.stats
	log.Debug("decoded spans", "records", in.records, "spans", dec.stats.spans, "traces", len(st.traceIDs),
		"strings", len(st.strs), "attribute_sets", len(st.attrSets), "elapsed", time.Since(began))

	asm := assemble(st, ar)
	log.Debug("assembled traces", "spans", asm.spans, "duplicates", asm.dups, "orphans", asm.orphans, "elapsed", time.Since(began))
	joined := joinLoneAuthentication(st, asm)
	sk := estimateSkew(st, asm, ar, opts.skewCap())

	tw := &traceWork{st: st, a: asm, skew: sk.applied, names: &nameFacts{st: st}}
	ag := newAggregator(st, ar, opts.top())
	for t := int32(0); t < int32(len(st.traceIDs)); t++ {
		if t&4095 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("analyze spans: %w", err)
			}
		}
		tw.analyze(t)
		ag.addTrace(tw)
	}
	log.Debug("analyzed traces", "traces", len(st.traceIDs), "elapsed", time.Since(began))

	ag.joinedAuth = joined
	ag.ss.finish()
	res := buildResult(&opts, st, asm, sk, tw, ag, &in)
	if opts.Baseline != nil {
		res.Baseline = diffBaseline(opts.Baseline, res, opts.BaselineLabel)
	}
	log.Debug("built result", "elapsed", time.Since(began))
	return res, nil
}

const progressEvery = 1 << 16

// inputStats describes what was read.
type inputStats struct {
	records, bytes, bad int64
	srcErr              error
	decode              decodeStats
}

// analyze runs the per-trace passes on trace t.
func (tw *traceWork) analyze(t int32) {
	tw.build(t)
	tw.classify()
	tw.selfTimes()
	tw.criticalPath()
}
