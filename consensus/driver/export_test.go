package driver

import "context"

// ExpectNext makes r's leader expect n proposals next, as a slot that
// resolved n of them would have.
func ExpectNext(ctx context.Context, r *Replica, n int) error {
	return r.call(ctx, func() error { r.expect = n; return nil })
}

// Held is how many proposals r holds.
func Held(ctx context.Context, r *Replica) (int, error) {
	var n int
	err := r.call(ctx, func() error { n = len(r.held); return nil })
	return n, err
}
