package timelinetest

import (
	"context"

	"github.com/clockd/clockd/timeline"
)

// FailingSource is a timeline.EventSource whose every Read and
// subscription fails at once with Err: a cluster out of reach.
type FailingSource struct{ Err error }

func (f FailingSource) Read(context.Context, uint64, int) ([]timeline.LogEvent, uint64, error) {
	return nil, 0, f.Err
}

func (f FailingSource) Subscribe(context.Context, uint64) (<-chan timeline.LogEvent, <-chan error) {
	errs := make(chan error, 1)
	errs <- f.Err
	return nil, errs
}
