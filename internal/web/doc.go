// Package web is the web view of a Tapestry node (issue 17): pages for the
// people who run it, served by tapestryd on an HTTP listener of its own
// (--http-listen), next to the Prometheus metrics at /metrics.
package web
