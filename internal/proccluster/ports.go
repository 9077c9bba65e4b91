package proccluster

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Ports for test nodes are taken from below the kernel's ephemeral range.
// A port picked by listening on :0 and closing again is free only for a
// moment: another test process's outgoing connection or :0 listener can
// be handed the same port before the node binds it. The kernel never hands
// out ports below the ephemeral range on its own, so a port there that is
// free when picked stays free unless another cluster picks it, and each
// pick is random over thousands of ports and checked by binding it.
var ports struct {
	sync.Mutex
	used map[int]bool
}

const lowestPort = 10000

// pickPort returns a loopback port that is free for both TCP and UDP.
func pickPort() (int, error) {
	ports.Lock()
	defer ports.Unlock()
	if ports.used == nil {
		ports.used = map[int]bool{}
	}
	hi := ephemeralLow()
	for range 1000 {
		p := lowestPort + rand.IntN(hi-lowestPort)
		if ports.used[p] || !free(p) {
			continue
		}
		ports.used[p] = true
		return p, nil
	}
	return 0, fmt.Errorf("proccluster: no free port in [%d, %d)", lowestPort, hi)
}

func free(port int) bool {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", addr)
	if err != nil {
		return false
	}
	u.Close()
	return true
}

// ephemeralLow is the bottom of the kernel's ephemeral port range.
func ephemeralLow() int {
	const fallback = 32768
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return fallback
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return fallback
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil || lo <= lowestPort+1000 {
		return fallback
	}
	return lo
}

// freeAddrs returns n loopback addresses with distinct free ports.
func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		p, err := pickPort()
		if err != nil {
			return nil, err
		}
		out = append(out, net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	}
	return out, nil
}
