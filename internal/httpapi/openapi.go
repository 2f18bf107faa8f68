package httpapi

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// openAPIDoc describes the API in OpenAPI 3.1. TestOpenAPIMatchesRoutes
// keeps it and the routes in step.
//
//go:embed openapi.json
var openAPIDoc string

func (a *API) openAPI(*http.Request, caller) (any, error) {
	return json.RawMessage(openAPIDoc), nil
}
