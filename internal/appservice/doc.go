// Package appservice connects the server to application services:
// programs in any language that own a namespace of users and rooms, hear
// of what happens to them as JSON events sent in transactions, act as
// them through the HTTP API, and may decide about their stanzas through
// hooks (see docs/appservices.md).
package appservice
