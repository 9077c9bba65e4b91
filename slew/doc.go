// Package slew is the math of a clock that starts at a floor and converges
// to a target clock without ever going backwards or changing rate by more
// than a bound. clockd uses it twice: a host's reference output slews
// toward the committed ticks, and a migrated VM's clock slews from the
// floor committed when it left toward the destination's reference.
//
// # Model
//
// Time is in nanoseconds. The target is any clock the caller can read,
// such as the host's reference, T; the output O is a pure function of T:
//
//	O(T) = max(o0 + (T-t0) - ⌊(T-t0)·ρ⌋, T)   when the output starts ahead (o0 > t0)
//	O(T) = min(o0 + (T-t0) + ⌊(T-t0)·ρ⌋, T)   when it starts behind (o0 < t0)
//
// where t0 is the target's reading at the start, o0 the output's start
// (the floor, or the floor stepped forward to t0 - MaxLag when MaxLag is
// set and the floor lags further), and ρ = MaxRatePPM/10⁶. The output
// meets the target after |o0-t0|/ρ of target time and follows it exactly
// from then on.
//
// # Guarantees
//
//   - O never decreases as T increases, and O(t0) >= the floor.
//   - Measured against the target, O advances at a rate within [1-ρ, 1+ρ]
//     (to within one nanosecond of rounding per reading).
//   - O equals T once T >= t0 + |o0-t0|/ρ.
//   - The only discontinuity is the optional forward step at the start,
//     which is taken only when the floor lags the target by more than
//     MaxLag.
//
// The functions are pure: no clock is read here, so the same inputs give
// the same readings on every host and after every restart.
//
// # Hazards
//
//   - The target must itself never go backwards; slew does not repair a
//     target that steps back, it only refuses to follow it below earlier
//     readings when the caller keeps the maximum.
//   - Arithmetic is exact in 128 bits; offsets beyond ±2⁶³ ns are refused.
package slew
