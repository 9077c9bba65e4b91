package wire

import (
	"errors"
	"strings"
	"testing"
)

var errTest = errors.New("test: bad input")

func TestRoundTrip(t *testing.T) {
	buf := []byte{7}
	buf = AppendBool(buf, true)
	buf = AppendString(buf, "addr")
	buf = AppendBytes(buf, nil)
	buf = AppendBytes(buf, []byte{1, 2})
	d := NewDecoder(buf, errTest)
	d.Version(7)
	if !d.Bool() || d.String() != "addr" || d.Bytes() != nil || string(d.Bytes()) != "\x01\x02" {
		t.Fatalf("decoded wrong values, err %v", d.Err)
	}
	if err := d.Finish(); err != nil {
		t.Fatal(err)
	}
}

// TestFailuresAreSticky checks each failure names what was wrong, wraps
// the sentinel, and leaves later reads returning zero values.
func TestFailuresAreSticky(t *testing.T) {
	cases := []struct {
		name string
		buf  []byte
		read func(d *Decoder)
		want string
	}{
		{"empty", nil, func(d *Decoder) { d.Version(1) }, "empty"},
		{"version", []byte{2}, func(d *Decoder) { d.Version(1) }, "codec version 2"},
		{"bool", []byte{3}, func(d *Decoder) { d.Bool() }, "bool 3"},
		{"uvarint", []byte{0x80}, func(d *Decoder) { d.Uvarint() }, "bad uvarint"},
		{"string", []byte{5, 'a'}, func(d *Decoder) { _ = d.String() }, "string of 5 bytes with 1 left"},
		{"count", []byte{9, 0, 0}, func(d *Decoder) { d.Count(1) }, "count 9 with 2 bytes left"},
		{"trailing", []byte{0, 0}, func(d *Decoder) { d.Byte() }, "1 trailing bytes"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := NewDecoder(c.buf, errTest)
			c.read(&d)
			err := d.Finish()
			if !errors.Is(err, errTest) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want %q", err, c.want)
			}
			if d.Uvarint() != 0 || d.String() != "" || d.Err != err {
				t.Fatal("reads after a failure did not return zero values")
			}
		})
	}
}

// TestShared: Shared reads what Bytes reads, in place, and appending to
// its result leaves the buffer alone.
func TestShared(t *testing.T) {
	buf := AppendBytes(AppendBytes(AppendBytes(nil, []byte("ab")), nil), []byte("cd"))
	d := NewDecoder(buf, errTest)
	ab, empty, cd := d.Shared(), d.Shared(), d.Shared()
	if err := d.Finish(); err != nil || string(ab) != "ab" || empty != nil || string(cd) != "cd" {
		t.Fatalf("decoded %q %q %q, %v", ab, empty, cd, err)
	}
	if &ab[0] != &buf[1] {
		t.Fatal("Shared copied")
	}
	_ = append(ab, 'x')
	if string(buf[3:]) != "\x00\x02cd" {
		t.Fatalf("append to a shared result wrote into the buffer: %q", buf)
	}
	d = NewDecoder([]byte{5, 'a'}, errTest)
	if b := d.Shared(); b != nil || !errors.Is(d.Err, errTest) {
		t.Fatalf("short string: %q, %v", b, d.Err)
	}
}
