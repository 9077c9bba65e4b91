package main

import (
	"context"
	"errors"
	"io"

	"github.com/clockd/clockd/api/client"
	"github.com/clockd/clockd/api/clockdv1"
	"github.com/clockd/clockd/ingest"
	"github.com/clockd/clockd/timeline"
)

// newEventSource connects to the event log of the node at addr. It is a
// variable so that tests can pass a fake.
var newEventSource = func(addr string, tls tlsFlags) (timeline.EventSource, error) {
	opts := client.Options{Insecure: tls.Insecure, CAFile: tls.CA, CertFile: tls.Cert, KeyFile: tls.Key,
		ServerName: tls.ServerName}
	c, err := client.DialLazy(addr, opts)
	if err != nil {
		return nil, err
	}
	return &grpcSource{c: c, o: clockdv1.NewOrderingServiceClient(c.Conn())}, nil
}

// grpcSource reads the log through OrderingService.
type grpcSource struct {
	c *client.Client
	o clockdv1.OrderingServiceClient
}

func (s *grpcSource) Close() error { return s.c.Close() }

func (s *grpcSource) Read(ctx context.Context, from uint64, max int) ([]timeline.LogEvent, uint64, error) {
	resp, err := s.o.Read(ctx, &clockdv1.ReadRequest{FromGsn: from, Max: uint32(max)})
	if err != nil {
		return nil, from, err
	}
	out := make([]timeline.LogEvent, 0, len(resp.Events))
	for _, e := range resp.Events {
		out = append(out, fromProto(e))
	}
	next := resp.NextGsn
	if len(out) == 0 {
		next = from
	}
	return out, next, nil
}

func (s *grpcSource) Subscribe(ctx context.Context, from uint64) (<-chan timeline.LogEvent, <-chan error) {
	evs, errs := make(chan timeline.LogEvent, 1024), make(chan error, 1)
	go func() {
		defer close(evs)
		st, err := s.o.Subscribe(ctx, &clockdv1.SubscribeRequest{FromGsn: from})
		if err != nil {
			errs <- err
			return
		}
		for {
			e, err := st.Recv()
			if err != nil {
				if !errors.Is(err, io.EOF) && ctx.Err() == nil {
					errs <- err
				}
				return
			}
			select {
			case evs <- fromProto(e):
			case <-ctx.Done():
				return
			}
		}
	}()
	return evs, errs
}

func fromProto(le *clockdv1.LogEvent) timeline.LogEvent {
	pe := le.Event
	// The wire has no "untimed" flag: a local time of 0 is the one an
	// event read without a time was sent with.
	e := ingest.Event{Host: pe.Host, Source: pe.Source, SourceSeq: pe.SourceSeq, LocalNs: pe.LocalUnixNano,
		Untimed: pe.LocalUnixNano == 0, RefEarliest: pe.RefEarliestUnixNano, RefLatest: pe.RefLatestUnixNano,
		Kind: pe.Kind, Name: pe.Name, DurNs: pe.DurNanos}
	for _, a := range pe.Attrs {
		e.Attrs = append(e.Attrs, ingest.Attr{Key: a.Key, Value: a.Value})
	}
	return timeline.LogEvent{GSN: le.Gsn, Event: e}
}

// closeSource closes src if it holds a connection.
func closeSource(src timeline.EventSource) {
	if c, ok := src.(interface{ Close() error }); ok {
		c.Close()
	}
}
