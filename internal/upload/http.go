package upload

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler returns the HTTP handler of the file store: PUT to a slot's URL
// stores the file, GET and HEAD serve it, OPTIONS answers CORS preflights.
func (s *Service) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// The headers of every answer. Web clients upload from another origin
// with an Authorization header, so they need CORS; the URLs are the
// capability, so no credentials are involved and any origin may use them.
func setCommonHeaders(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "7200")
	h.Set("X-Content-Type-Options", "nosniff")
	// Nothing served here is a page that should run or load anything.
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
}

func (s *Service) serveHTTP(w http.ResponseWriter, r *http.Request) {
	setCommonHeaders(w.Header())
	p, ok := s.localPath(r.URL.Path)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
	case http.MethodPut:
		s.put(w, r, p)
	case http.MethodGet, http.MethodHead:
		s.get(w, r, p)
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// localPath strips the public URL's path from p, so that a reverse proxy
// may forward requests with or without it.
func (s *Service) localPath(p string) (string, bool) {
	if s.base != nil && s.base.Path != "" {
		if rest, ok := strings.CutPrefix(p, s.base.Path); ok && strings.HasPrefix(rest, "/") {
			p = rest
		}
	}
	return p, strings.HasPrefix(p, pathPrefix)
}

func (s *Service) put(w http.ResponseWriter, r *http.Request, p string) {
	id, name, ok := parsePath(p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	tok, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="upload"`)
		http.Error(w, "no upload slot: the Authorization header of the slot is missing", http.StatusUnauthorized)
		return
	}
	c, err := verifyToken(s.store.secret, tok)
	if err != nil || c.Path != p {
		s.log.Debug("PUT refused", "path", p, "err", err)
		http.Error(w, "invalid upload slot", http.StatusForbidden)
		return
	}
	if s.deps.Now().Unix() >= c.Expires {
		http.Error(w, "upload slot expired", http.StatusForbidden)
		return
	}
	if r.ContentLength >= 0 && r.ContentLength != c.Size {
		http.Error(w, "Content-Length "+strconv.FormatInt(r.ContentLength, 10)+" differs from the slot's size "+strconv.FormatInt(c.Size, 10), http.StatusBadRequest)
		return
	}
	if ct := r.Header.Get("Content-Type"); !sameType(ct, c.ContentType) {
		http.Error(w, "Content-Type differs from the slot's", http.StatusBadRequest)
		return
	}
	f, err := s.store.begin(id, c, s.cfg.Quota)
	switch {
	case errors.Is(err, errExists):
		http.Error(w, "this slot has been used", http.StatusConflict)
		return
	case errors.Is(err, errQuota):
		http.Error(w, "upload quota exceeded", http.StatusRequestEntityTooLarge)
		return
	case err != nil:
		s.log.Error("PUT", "err", err)
		http.Error(w, "cannot store the file", http.StatusInternalServerError)
		return
	}
	if err := copyExactly(f, r.Body, c.Size); err != nil {
		s.store.abort(id, f, c)
		switch {
		case errors.Is(err, errTooLarge):
			http.Error(w, "body larger than the slot's size", http.StatusRequestEntityTooLarge)
		case errors.Is(err, errTooShort):
			http.Error(w, "body shorter than the slot's size", http.StatusBadRequest)
		default:
			// The client went away or its body broke; there is nobody to
			// tell, but an answer is written in case there is.
			s.log.Debug("PUT body", "id", id, "err", err)
			http.Error(w, "upload interrupted", http.StatusBadRequest)
		}
		return
	}
	now := s.deps.Now()
	m := meta{Name: name, ContentType: c.ContentType, Size: c.Size, Owner: c.Owner, Created: now.Unix()}
	if s.cfg.ExpireAfter > 0 {
		m.Expires = now.Add(s.cfg.ExpireAfter).Unix()
	}
	if err := s.store.commit(id, f, m); err != nil {
		s.log.Error("PUT", "err", err)
		http.Error(w, "cannot store the file", http.StatusInternalServerError)
		return
	}
	s.log.Info("file uploaded", "owner", c.Owner, "id", id, "size", c.Size)
	w.WriteHeader(http.StatusCreated)
}

// sameType compares a PUT's Content-Type with the slot's: a client that
// leaves it out means the default, and media types are case-insensitive.
func sameType(got, want string) bool {
	got = strings.TrimSpace(got)
	if got == "" {
		got = defaultContentType
	}
	return strings.EqualFold(got, want)
}

// safeInline are the types a browser may show in place, as Prosody's
// default list has it; anything else is offered as a download, so that an
// uploaded page cannot act as a page of this origin.
func safeInline(ctype string) bool {
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false
	}
	if mt == "text/plain" {
		return true
	}
	major, _, _ := strings.Cut(mt, "/")
	return major == "image" || major == "video" || major == "audio"
}

func (s *Service) get(w http.ResponseWriter, r *http.Request, p string) {
	id, name, ok := parsePath(p)
	if !ok {
		http.NotFound(w, r)
		return
	}
	now := s.deps.Now()
	m, ok := s.store.lookup(id, now)
	if !ok || m.Name != name {
		http.NotFound(w, r)
		return
	}
	f, err := s.store.open(id)
	if err != nil {
		// Swept between the lookup and now.
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", m.ContentType)
	disp := "attachment"
	if safeInline(m.ContentType) {
		disp = "inline"
	}
	if v := mime.FormatMediaType(disp, map[string]string{"filename": m.Name}); v != "" {
		h.Set("Content-Disposition", v)
	} else {
		h.Set("Content-Disposition", disp)
	}
	if m.Expires != 0 {
		h.Set("Cache-Control", "max-age="+strconv.FormatInt(max(m.Expires-now.Unix(), 0), 10)+", immutable")
	} else {
		h.Set("Cache-Control", "max-age=31536000, immutable")
	}
	http.ServeContent(w, r, "", time.Unix(m.Created, 0), f)
}
