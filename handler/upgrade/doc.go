// Package upgrade holds the words of the domain that the function, the wire
// formats and the tools share: what a request asks (its kind, the version
// types), and what became of each gateway (an outcome with its reason, a
// result, the counts, a rollout's state, what a control request changed).
// It holds values and their rules, no behaviour: the function (package
// handler) decides, package events puts these on the wire.
package upgrade
