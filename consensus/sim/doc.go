// Package sim runs whole consensus clusters in one goroutine from one seed.
//
// Time is virtual (milliseconds); nodes tick every TickMs. The network
// delays every message independently (so it reorders them), drops and
// duplicates them, and cuts links: symmetric splits into two sides, or one
// direction of one link. Nodes crash at random, either between Readies or
// in the middle of one, and restart from what their simulated disk holds:
// whatever was not synced is lost. Clients propose concurrently at the
// node they believe leads and follow leader hints.
//
// Half the seeds drive nodes as the real driver does, with writes in
// flight (Options.AsyncWrites): a Ready is released at once and the node
// goes on stepping, while its write, its messages and Node.Persisted come
// later, at a random step. A crash loses the writes still in flight.
//
// A run has a chaos phase, with all faults, then a calm phase in which the
// network heals and crashed nodes restart.
//
// # Invariants
//
// The checker computes the ground truth from what nodes say and write,
// not from what they believe, and checks after every step:
//
//   - one ballot proposes at most one value per slot;
//   - no acceptor accepts below a ballot it has promised;
//   - at most one value is ever chosen per slot (a true majority of
//     acceptances at one ballot), so a chosen value never changes;
//   - every node applies slots in order, only chosen values, and the same
//     value as every other node, so applied sequences are prefixes of each
//     other.
//
// Liveness: once the calm phase starts, every client command must be
// applied on every node within CalmMs.
//
// # Replay
//
// A failure names its seed; `go test ./consensus/sim -run TestSimulation
// -seed N` replays it exactly. `make sim SEEDS=N` runs N seeds.
//
// # Teeth
//
// TestBrokenVariantsAreCaught runs deliberately broken protocols (replying
// before persisting, counting a node's own acceptance before its write is
// durable, ignoring promised values, a quorum of n/2) and fails
// if the simulator does not catch each one.
package sim
