// Package driver runs one consensus node on one goroutine and connects it
// to storage, the transport and the replicated state machine.
//
// # The loop
//
// Run owns the protocol core. It wakes on a tick, a peer message or a
// proposal, then drains every message and proposal already waiting, so one
// Ready (and one fsync) covers a whole batch. For every Ready it:
//
//  1. persists the hard state and entries (Storage.Save, which fsyncs);
//  2. sends the messages (Transport.Send, which never blocks);
//  3. applies the chosen commands in slot order (StateMachine.Apply);
//  4. calls Advance.
//
// # Proposals
//
// Propose returns only once the command is chosen and applied locally,
// with its slot and the state machine's result. On a follower it fails at
// once with *consensus.NotLeaderError naming the leader; proposals are
// never forwarded. If the node loses the leadership after giving the
// command a slot, Propose fails with ErrOutcomeUnknown: the command may
// still be chosen, and a blind retry may apply it twice.
//
// # Failure
//
// A storage error stops the replica at once (fail-stop) with the log line
// "storage write failed, stopping node": nothing is sent or applied on
// the strength of a write that may not be durable. Run returns the error,
// pending proposals fail with ErrStopped, and the process should exit.
//
// # Hazards
//
//   - The state machine is rebuilt by replaying the whole log on start;
//     Apply must be deterministic and must not do I/O that cannot repeat.
//   - Apply runs on the driver goroutine; a slow Apply slows consensus.
package driver
