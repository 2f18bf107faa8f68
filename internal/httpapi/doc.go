// Package httpapi is the server's HTTP API: what application services do
// as the users of their namespace, and what an administrator scripts (see
// docs/appservices.md). It authenticates callers by token, checks that a
// service acts within its namespace, validates what it is given and hands
// the action to a Backend; it knows nothing of how the server does it.
package httpapi
