package kvtest

import (
	"encoding/binary"
	"encoding/gob"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
)

// Op names a write operation. Reads are not commands: they go through the
// replica's read barrier and then KV.Get.
type Op uint8

// The write operations.
const (
	OpPut    Op = iota + 1 // Key = Value
	OpAppend               // Key += Value
	OpCAS                  // if Key == Old { Key = Value }
)

func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpAppend:
		return "append"
	case OpCAS:
		return "cas"
	}
	return fmt.Sprintf("op-%d", uint8(o))
}

// Command is one client write as it travels through the log.
//
// (Client, Seq) is the operation's unique id. A client numbers its
// operations 1, 2, 3... and has at most one in flight; it may submit the
// same operation several times (same Client and Seq) when an attempt's
// outcome is unknown.
type Command struct {
	Op     Op
	Client uint64
	Seq    uint64
	Key    string
	Value  string
	Old    string // CAS only
}

// Result is what Apply returns for a command that took effect (or for a
// duplicate of the client's latest one).
type Result struct {
	Prev string // the key's value just before the operation
	OK   bool   // CAS: whether it swapped; always true for Put and Append
}

// Errors Apply returns, as its result, for commands that change nothing.
var (
	ErrMalformed = errors.New("kvtest: malformed command")
	// ErrStale: the client already applied a later operation; this is a
	// late copy of an abandoned attempt and is ignored.
	ErrStale = errors.New("kvtest: stale operation")
)

// Encode returns the command's wire form:
//
//	op byte | uvarint(Client) | uvarint(Seq) | str(Key) | str(Value) | str(Old)
//
// where str(s) is uvarint(len(s)) followed by the bytes of s.
func (c Command) Encode() []byte {
	b := make([]byte, 0, 1+3*binary.MaxVarintLen64+len(c.Key)+len(c.Value)+len(c.Old)+2*binary.MaxVarintLen64)
	b = append(b, byte(c.Op))
	b = binary.AppendUvarint(b, c.Client)
	b = binary.AppendUvarint(b, c.Seq)
	for _, s := range []string{c.Key, c.Value, c.Old} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// DecodeCommand parses what Encode wrote. It rejects unknown operations,
// truncated input and trailing bytes.
func DecodeCommand(b []byte) (Command, error) {
	var c Command
	if len(b) == 0 {
		return c, fmt.Errorf("%w: empty", ErrMalformed)
	}
	c.Op, b = Op(b[0]), b[1:]
	if c.Op < OpPut || c.Op > OpCAS {
		return c, fmt.Errorf("%w: unknown op %d", ErrMalformed, uint8(c.Op))
	}
	var err error
	if c.Client, b, err = uvarint(b); err != nil {
		return c, err
	}
	if c.Seq, b, err = uvarint(b); err != nil {
		return c, err
	}
	for _, s := range []*string{&c.Key, &c.Value, &c.Old} {
		var n uint64
		if n, b, err = uvarint(b); err != nil {
			return c, err
		}
		if n > uint64(len(b)) {
			return c, fmt.Errorf("%w: string of %d bytes, %d left", ErrMalformed, n, len(b))
		}
		*s, b = string(b[:n]), b[n:]
	}
	if len(b) != 0 {
		return c, fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(b))
	}
	return c, nil
}

func uvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("%w: bad uvarint", ErrMalformed)
	}
	return v, b[n:], nil
}

// session is the last operation a client applied and its result.
type session struct {
	Seq    uint64
	Result Result
}

// KV is a replicated string map with per-client deduplication. It
// implements driver.StateMachine.
//
// Deduplication: for every client KV remembers the highest Seq applied
// and its result. A command with that Seq again is a retry of an attempt
// that did take effect: it changes nothing and returns the remembered
// result, so a client that retries an operation of unknown outcome applies
// it exactly once. A command with a lower Seq is a late copy of an
// operation the client has given up on: it changes nothing and returns
// ErrStale. Both depend only on the log, so Apply stays deterministic. The
// table holds one entry per client ever seen. Seq 0 opts out: such a
// command is applied every time it appears in the log.
type KV struct {
	mu       sync.Mutex
	data     map[string]string
	sessions map[uint64]session
	// applied is the slot of the last command applied; changed is closed
	// and replaced whenever it moves, so tests can wait for progress
	// without polling.
	applied uint64
	changed chan struct{}
}

// New returns an empty KV.
func New() *KV {
	return &KV{data: map[string]string{}, sessions: map[uint64]session{}, changed: make(chan struct{})}
}

// Apply decodes and applies one command. It returns a Result, or an error
// value (ErrMalformed, ErrStale) for a command that changed nothing.
func (kv *KV) Apply(slot uint64, cmd []byte) any {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.applied = slot
	close(kv.changed)
	kv.changed = make(chan struct{})

	c, err := DecodeCommand(cmd)
	if err != nil {
		return err
	}
	if c.Seq == 0 {
		return kv.exec(c)
	}
	s := kv.sessions[c.Client]
	switch {
	case c.Seq == s.Seq:
		return s.Result
	case c.Seq < s.Seq:
		return fmt.Errorf("%w: client %d seq %d, applied %d", ErrStale, c.Client, c.Seq, s.Seq)
	}
	res := kv.exec(c)
	kv.sessions[c.Client] = session{Seq: c.Seq, Result: res}
	return res
}

func (kv *KV) exec(c Command) Result {
	prev := kv.data[c.Key]
	switch c.Op {
	case OpPut:
		kv.data[c.Key] = c.Value
	case OpAppend:
		kv.data[c.Key] = prev + c.Value
	case OpCAS:
		if prev != c.Old {
			return Result{Prev: prev}
		}
		kv.data[c.Key] = c.Value
	}
	return Result{Prev: prev, OK: true}
}

// Get returns the value of key, "" if unset. It is linearizable only
// right after a successful read barrier on the leader that applies to
// this KV.
func (kv *KV) Get(key string) string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.data[key]
}

// Dump returns a copy of the whole map.
func (kv *KV) Dump() map[string]string {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return maps.Clone(kv.data)
}

// State returns the slot of the last command applied and a copy of the
// map as of that slot, read together.
func (kv *KV) State() (uint64, map[string]string) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.applied, maps.Clone(kv.data)
}

// Applied returns the slot of the last command applied, and a channel
// closed when that changes.
func (kv *KV) Applied() (uint64, <-chan struct{}) {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	return kv.applied, kv.changed
}

// image is the snapshot format, encoded with encoding/gob.
type image struct {
	Data     map[string]string
	Sessions map[uint64]session
	Applied  uint64
}

// Snapshot writes the whole state: the map, the sessions and the applied
// slot.
func (kv *KV) Snapshot(w io.Writer) error {
	kv.mu.Lock()
	defer kv.mu.Unlock()
	img := image{Data: kv.data, Sessions: kv.sessions, Applied: kv.applied}
	if err := gob.NewEncoder(w).Encode(&img); err != nil {
		return fmt.Errorf("kvtest: snapshot: %w", err)
	}
	return nil
}

// Restore replaces the whole state with one Snapshot wrote. On error the
// state is unchanged.
func (kv *KV) Restore(r io.Reader) error {
	var img image
	if err := gob.NewDecoder(r).Decode(&img); err != nil {
		return fmt.Errorf("kvtest: restore: %w", err)
	}
	if img.Data == nil {
		img.Data = map[string]string{}
	}
	if img.Sessions == nil {
		img.Sessions = map[uint64]session{}
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	kv.data, kv.sessions, kv.applied = img.Data, img.Sessions, img.Applied
	close(kv.changed)
	kv.changed = make(chan struct{})
	return nil
}
