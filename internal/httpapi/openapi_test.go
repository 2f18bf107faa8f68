package httpapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// openAPI is the part of an OpenAPI document the tests look at.
type openAPI struct {
	OpenAPI    string                          `json:"openapi"`
	Security   []map[string][]string           `json:"security"`
	Paths      map[string]map[string]operation `json:"paths"`
	Components struct {
		SecuritySchemes map[string]struct {
			Type, Scheme string
		} `json:"securitySchemes"`
	} `json:"components"`
}

type operation struct {
	OperationID string                     `json:"operationId"`
	Parameters  []map[string]any           `json:"parameters"`
	RequestBody map[string]any             `json:"requestBody"`
	Responses   map[string]json.RawMessage `json:"responses"`
	Security    *[]map[string][]string     `json:"security"`
}

func loadOpenAPI(t *testing.T) (openAPI, map[string]any) {
	t.Helper()
	a, _ := newTestAPI(t, nil)
	w := do(a, "", "GET", "/api/v1/openapi.json", "")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	var doc openAPI
	var raw map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	return doc, raw
}

var wildcard = regexp.MustCompile(`\{([a-z]+)(\.\.\.)?\}`)

// docPath is a mux pattern's path as OpenAPI writes it.
func docPath(p string) string { return wildcard.ReplaceAllString(p, "{$1}") }

// TestOpenAPIMatchesRoutes keeps the document and the mux in step:
// every route is described, every description is a route the mux
// serves, with its path parameters, its success status and the bearer
// scheme.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc, raw := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("openapi %q", doc.OpenAPI)
	}
	if s := doc.Components.SecuritySchemes["bearer"]; s.Type != "http" || s.Scheme != "bearer" || !slices.ContainsFunc(doc.Security, func(m map[string][]string) bool { _, ok := m["bearer"]; return ok }) {
		t.Errorf("security: %+v, schemes %+v", doc.Security, doc.Components.SecuritySchemes)
	}

	a, _ := newTestAPI(t, nil)
	served := map[string]route{}
	for _, rt := range a.routes() {
		served[rt.method+" "+docPath(rt.path)] = rt
	}
	described := map[string]bool{}
	for p, ops := range doc.Paths {
		for m, op := range ops {
			key := strings.ToUpper(m) + " " + p
			described[key] = true
			rt, ok := served[key]
			if !ok {
				t.Errorf("%s is described but not served", key)
				continue
			}
			checkOperation(t, key, rt, op, raw)
		}
	}
	for key := range served {
		if !described[key] {
			t.Errorf("%s is served but not described", key)
		}
	}
}

func checkOperation(t *testing.T, key string, rt route, op operation, raw map[string]any) {
	t.Helper()
	var params []string
	for _, p := range op.Parameters {
		if ref, ok := p["$ref"].(string); ok {
			p, _ = resolve(raw, ref).(map[string]any)
		}
		if p == nil {
			t.Errorf("%s: a parameter does not resolve", key)
			continue
		}
		if p["in"] == "path" {
			params = append(params, p["name"].(string))
			if p["required"] != true {
				t.Errorf("%s: path parameter %v not required", key, p["name"])
			}
		}
	}
	var want []string
	for _, m := range wildcard.FindAllStringSubmatch(rt.path, -1) {
		want = append(want, m[1])
	}
	if !slices.Equal(params, want) {
		t.Errorf("%s: path parameters %q, want %q", key, params, want)
	}
	success := "204"
	if rt.method == "GET" {
		success = "200"
	}
	if rt.ok != 0 {
		success = strconv.Itoa(rt.ok)
	}
	if _, ok := op.Responses[success]; !ok {
		t.Errorf("%s: no %s response", key, success)
	}
	if _, ok := op.Responses["401"]; ok != (!rt.public || rt.denies) {
		t.Errorf("%s: public %v, 401 described %v", key, rt.public, ok)
	}
	if rt.public && (op.Security == nil || len(*op.Security) != 0) {
		t.Errorf("%s: public, yet security is not []", key)
	}
	if takesBody := sampleBody(rt) != ""; takesBody != (op.RequestBody != nil) {
		t.Errorf("%s: request body described %v", key, op.RequestBody != nil)
	}
	if op.OperationID == "" {
		t.Errorf("%s: no operationId", key)
	}
}

// resolve follows a local JSON reference.
func resolve(doc map[string]any, ref string) any {
	var v any = doc
	for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[part]
	}
	return v
}

// TestOpenAPIRefs checks that every reference of the document resolves.
func TestOpenAPIRefs(t *testing.T) {
	_, raw := loadOpenAPI(t)
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && resolve(raw, ref) == nil {
				t.Errorf("%s does not resolve", ref)
			}
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(raw)
}

// TestOpenAPIPathsAreServed asks the mux for every path of the document,
// filled in, so that a described path the mux would not route fails
// even if the route table says otherwise.
func TestOpenAPIPathsAreServed(t *testing.T) {
	doc, _ := loadOpenAPI(t)
	a, _ := newTestAPI(t, nil)
	for p, ops := range doc.Paths {
		for m := range ops {
			w := do(a, adminToken, strings.ToUpper(m), samplePath(p), "")
			if w.Code == http.StatusNotFound || w.Code == http.StatusMethodNotAllowed {
				t.Errorf("%s %s: %d %s", strings.ToUpper(m), p, w.Code, w.Body)
			}
		}
	}
}
