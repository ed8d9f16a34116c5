// Package bench is the benchmark harness: it builds a switch with traffic
// generators and sinks, runs a scenario for a duration or a packet count,
// and reports throughput, latency percentiles (HdrHistogram), drops,
// accounting and GC activity, next to a baseline run in the same command
// (subject and baseline alternated A B B A ..., medians reported).
//
// Scenarios here run over the in-memory port (dataplane/memport), so they
// need no privileges. The CLI in cmd/dataplane is a thin wrapper around
// this package.
package bench
