package main

import (
	"fmt"
	"io"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// Floor is the machine's physical floor for one commit: a quorum needs at
// least one durable write and one network round trip.
type Floor struct {
	BoltWrites   int     `json:"bolt_writes"`
	BoltWriteUs  float64 `json:"bolt_write_p50_us"` // one fsync'd StoreLog of one 64-byte entry
	BoltWriteP99 float64 `json:"bolt_write_p99_us"`
	Pings        int     `json:"pings"`
	RTTUs        float64 `json:"loopback_rtt_p50_us"` // one 64-byte TCP ping-pong on 127.0.0.1
	RTTP99Us     float64 `json:"loopback_rtt_p99_us"`
	FloorUs      float64 `json:"floor_us"` // BoltWriteUs + RTTUs
	Filesystem   string  `json:"filesystem"`
	// SharedBoltWriteUs is the same write with clusterNodes writers at
	// once, each on its own file, as the cluster's nodes share this disk.
	// Context only: the targets use BoltWriteUs.
	SharedBoltWriteUs  float64 `json:"shared_bolt_write_p50_us"`
	SharedBoltWriteP99 float64 `json:"shared_bolt_write_p99_us"`
	// RoundsBoltWriteUs is every round's BoltWriteUs when the floor was
	// measured more than once; the other fields are the median round's.
	RoundsBoltWriteUs []float64 `json:"rounds_bolt_write_p50_us,omitempty"`
}

// medianFloor returns the floor with the median bolt write (the lower
// middle one of an even count), with every round's bolt write attached.
func medianFloor(fs []Floor) Floor {
	med, all := median(fs, func(f Floor) float64 { return f.BoltWriteUs })
	if len(fs) > 1 {
		med.RoundsBoltWriteUs = all
	}
	return med
}

// measureFloor times n fsync'd bolt writes in dir (on the filesystem the
// clusters use) and pings loopback round trips.
func measureFloor(dir string, writes, pings int) (Floor, error) {
	f := Floor{BoltWrites: writes, Pings: pings, Filesystem: fsName(dir)}
	w, err := boltWrites(floorPath(dir, 0), writes)
	if err != nil {
		return f, fmt.Errorf("bolt floor: %w", err)
	}
	sw, err := sharedBoltWrites(dir, clusterNodes, writes)
	if err != nil {
		return f, fmt.Errorf("shared bolt floor: %w", err)
	}
	r, err := loopbackRTTs(pings)
	if err != nil {
		return f, fmt.Errorf("loopback floor: %w", err)
	}
	f.BoltWriteUs, f.BoltWriteP99 = us(exactQuantile(w, 0.5)), us(exactQuantile(w, 0.99))
	f.RTTUs, f.RTTP99Us = us(exactQuantile(r, 0.5)), us(exactQuantile(r, 0.99))
	f.SharedBoltWriteUs, f.SharedBoltWriteP99 = us(exactQuantile(sw, 0.5)), us(exactQuantile(sw, 0.99))
	f.FloorUs = f.BoltWriteUs + f.RTTUs
	return f, nil
}

// boltWrites stores n single 64-byte entries with raft-boltdb/v2 (fsync on,
// as both engines use it), after a few unmeasured ones.
func boltWrites(path string, n int) ([]time.Duration, error) {
	db, err := raftboltdb.New(raftboltdb.Options{Path: path, NoSync: false})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	const warm = 10
	out := make([]time.Duration, 0, n)
	for i := range warm + n {
		l := &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: make([]byte, cmdBytes)}
		t0 := time.Now()
		if err := db.StoreLog(l); err != nil {
			return nil, err
		}
		if i >= warm {
			out = append(out, time.Since(t0))
		}
	}
	return out, nil
}

// sharedBoltWrites runs boltWrites on k files at once and returns every
// write's latency.
func sharedBoltWrites(dir string, k, n int) ([]time.Duration, error) {
	var (
		mu    sync.Mutex
		all   []time.Duration
		first error
		wg    sync.WaitGroup
	)
	for i := range k {
		wg.Go(func() {
			ds, err := boltWrites(floorPath(dir, i+1), n)
			mu.Lock()
			defer mu.Unlock()
			all = append(all, ds...)
			if first == nil {
				first = err
			}
		})
	}
	wg.Wait()
	return all, first
}

// floorPath names a fresh bolt file for a floor measurement.
func floorPath(dir string, i int) string {
	return filepath.Join(dir, fmt.Sprintf("floor-%d-%d.db", time.Now().UnixNano(), i))
}

// loopbackRTTs times n 64-byte ping-pongs over one TCP connection on
// 127.0.0.1, after a few unmeasured ones.
func loopbackRTTs(n int) ([]time.Duration, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer lis.Close()
	go func() {
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo until the client closes
	}()
	c, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	const warm = 50
	buf := make([]byte, cmdBytes)
	out := make([]time.Duration, 0, n)
	for i := range warm + n {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return nil, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return nil, err
		}
		if i >= warm {
			out = append(out, time.Since(t0))
		}
	}
	return out, nil
}

// exactQuantile is the nearest-rank q-quantile of ds; it sorts ds.
func exactQuantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	return ds[nearestRank(q, uint64(len(ds)))-1]
}

func us(d time.Duration) float64 { return float64(d) / 1e3 }

// fsName names the filesystem holding dir, from statfs's magic number.
func fsName(dir string) string {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return "unknown"
	}
	names := map[int64]string{0xEF53: "ext4", 0x58465342: "xfs", 0x9123683E: "btrfs", 0x01021994: "tmpfs",
		0x794c7630: "overlayfs", 0x2FC12FC1: "zfs", 0x6969: "nfs", 0x65735546: "fuse"}
	if n, ok := names[int64(st.Type)]; ok {
		return n
	}
	return fmt.Sprintf("fs-0x%x", st.Type)
}
