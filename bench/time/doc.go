// Command bench-time measures clockd's time paths against peers on the
// machine it runs on, in one run: Now over gRPC against the same
// server's gRPC health check, batched Timestamp throughput, a read of the
// shared page against time.Now(), and NTP query latency against chronyd.
// `make bench-time` runs it.
//
// # The setup
//
// One cluster serves every row: three `clockd run` processes on
// 127.0.0.1 started by internal/proccluster, in plaintext (--insecure,
// proccluster's default), every other setting at its default. The bench
// waits until every node reads SYNCHRONIZED, asks for the leader, and
// measures against the leader alone; the report names it. Every client
// runs in the bench's own process and reaches the leader over TCP or UDP
// on loopback.
//
// clockd runs with its default rate limits (api_rate_limit, api_burst,
// ntp_rate_limit, ntp_burst), as a deployment would, and the load is
// spread so that they never refuse a call:
//
//   - The API server lets each client, in plaintext its IP address, start
//     2000 calls/s with a burst of 200 (api_rate_limit, api_burst), the
//     health check included. From one address both kinds of call would
//     be capped there and the comparison would say nothing. Now and the
//     health check therefore share a pool of --conns connections (64),
//     connection i dialled from its own address 127.2.x.y (all of
//     127.0.0.0/8 is loopback on Linux), and every client sends each call
//     on the next connection of the pool. The table prints the busiest
//     address's rate and warns when it comes within 80% of the limit.
//   - The NTP server answers each source 8 requests/s with a burst of 16
//     (ntp_rate_limit, ntp_burst); beyond that it kisses or
//     drops. The queries therefore come from 127.3.x.y, each address
//     sending 8 queries to each server before the next takes over, so
//     clockd's limiter runs on every request but never refuses one.
//     chronyd sees the same addresses.
//
// The Timestamp row keeps the limit as it is: one client, as an
// application would dial it, from 127.0.0.1.
//
// # The rows
//
//  1. Now and health. For every --clients count (1 and 64), closed-loop
//     clients make one call at a time: TimeService.Now, or
//     grpc_health_v1 Check for the whole server (""). Both kinds are
//     warmed up for --warmup, then run in turns of 250 ms (health, Now,
//     Now, health, ...) until each has had --duration, so both meet the
//     same background load. Calls/s counts the calls that started and
//     ended inside a turn; p50 and p99 are their latencies. --repeat
//     rounds (3); each row shows its best round and the ratio Now/health
//     is taken between the best rounds, with every round's own ratio
//     beside it. Target: Now/health >= 0.90 at every count.
//  2. Timestamp. For every --ts-callers count (256, 1024, 4096), that
//     many goroutines call client.Timestamp in a loop on one
//     api/client.Client, whose batcher coalesces them into
//     Timestamp(count) requests with one request in flight. A client
//     interceptor counts the requests and the timestamps they ask for; a
//     flag switched at the window's edges decides what counts, so the
//     callers read no clock. Timestamps/s, requests/s and timestamps per
//     request, best of --repeat rounds. Target: at least 1,000,000
//     timestamps/s at the best count.
//  3. Shared page. One goroutine calls shm.Reader.Now on the leader's
//     page, time.Now(), and vclock.MonoNow (the CLOCK_MONOTONIC read
//     inside the reader, for context) in batches of 1024, in turns of
//     50 ms until each has had --duration; ns per call is time over
//     calls, the fastest of --repeat rounds. Target: the reader at most
//     3× time.Now().
//  4. NTP. chronyd (Debian's chrony; scripts/bench-deps.sh installs it)
//     runs as `chronyd -x -d -f <dir>/chrony.conf`: -x leaves the system
//     clock alone, and the configuration (chronyConf) serves 127.0.0.1
//     on a free port at local stratum 10 with no upstream, allows
//     127.0.0.0/8, has no ratelimit directive (chronyd then answers
//     every request), and keeps its drift file, pid file and command
//     socket in the run's directory with the UDP command port off. The
//     bench polls it with queries until it answers, and kills it at the
//     end. Queries use github.com/beevik/ntp QueryWithOptions, the port
//     in the address (its Port option is deprecated), a 1 s timeout, one
//     query outstanding: --warmup of queries, then --repeat rounds of
//     --ntp-queries (3000) to each server, alternating and swapping which
//     goes first. Latency is the time QueryWithOptions takes, socket
//     set-up included, the same for both; a timeout, a kiss or a reply
//     that fails Validate is an error. Each server shows its round with
//     the lowest p50, and every round's ratio is printed beside the
//     ratio of the best. Target: clockd's p50 at most chronyd's. Without
//     chronyd the row and its target read NOT MEASURED.
//
// # Guarantees
//
//   - Ratios come from peers measured in the same run, in alternation;
//     nothing is compared with a stored figure.
//   - A target whose rows had errors is FAIL, whatever the numbers; one
//     that could not be measured is NOT MEASURED, never PASS.
//   - Targets never change the exit code: 0 means the run completed, 1 an
//     error, 2 bad flags, 130 an interrupt.
//   - Every process started is stopped and the temporary directory
//     removed when the run ends, fails or is interrupted; a bench killed
//     outright takes chronyd with it (PR_SET_PDEATHSIG).
//
// # Hazards
//
//   - On a 2-CPU machine the clients, the three nodes and chronyd share
//     two cores, with whatever else runs there: the report prints the
//     load average at both ends, each row shows every round, and the noise
//     column is (max-min)/max over the rounds.
//   - The Timestamp rows measure the client library as much as the
//     server: thousands of goroutines are parked and woken per request in
//     the bench's process.
//   - Loopback latency says nothing about a network; it is the servers'
//     own cost and their runtimes' wake-up paths that differ.
package main
