// Package component owns the lifecycle every long-running part of regente
// follows: an optional Init, Start, an optional Ready gate, an optional fatal-error
// channel, and Stop. A Manager starts components in the order of one wiring
// list, each gated on the previous being ready, and stops them in reverse.
//
// It must not know any concrete component: the wiring lists live in
// pkg/server and pkg/agent.
package component
