// Package httpapi is the server's HTTP API: what application services do
// as the users of their namespace, and what an administrator scripts (see
// docs/appservices.md). It authenticates callers by token, checks that a
// service acts within its namespace, validates what it is given and hands
// the action to a Backend; it knows nothing of how the server does it.
//
// New builds the handler of the paths under /api/v1/. Its answers follow
// one rule: a call that changes something answers 204 with no body, a
// read 200 with a JSON object, an error a JSON object {"error": "…"}
// whose message, for a 400, begins with the field at fault. The calls,
// their bodies and their answers are described by openapi.json, served
// at /api/v1/openapi.json, which a test holds to the routes.
package httpapi
