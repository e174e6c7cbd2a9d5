// Package docs holds the project's prose documentation (the wire spec, the
// threat model, the chaos and scale results) and the tests that keep the
// README and these documents in step with the code: every test the
// repository's Markdown cites exists, and every benchmark figure the
// README quotes is one of BENCHMARKS.md's. It has no code of its own.
package docs
