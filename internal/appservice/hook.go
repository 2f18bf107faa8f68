package appservice

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/internal/router"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

var _ router.Hook = (*Manager)(nil)

// Decide implements router.Hook: each service with a hook on kind whose
// users (or watched users, or rooms) the stanza concerns decides in turn;
// the first refusal ends it, a replacement goes on to the next.
func (m *Manager) Decide(ctx context.Context, kind string, s router.Stanza) router.Decision {
	if !m.hooks[kind] {
		return router.Decision{}
	}
	var d router.Decision
	for _, svc := range m.services {
		h, ok := svc.hooks[kind]
		if !ok || !concerns(svc, kind, s) {
			continue
		}
		r := m.ask(ctx, svc, h, kind, s)
		if r.Deny {
			return r
		}
		if r.Replace != nil {
			d.Replace = r.Replace
			s.El = r.Replace
		}
	}
	return d
}

// concerns reports whether the stanza is one the service decides about:
// to or from a user it watches (its own users included), or to one of its
// rooms.
func concerns(svc *Service, kind string, s router.Stanza) bool {
	if kind == HookRoomMessage {
		return svc.OwnsRoom(s.To.BareString())
	}
	return svc.Watches(s.From.BareString()) || svc.Watches(s.To.BareString())
}

// hookAnswer is what a service answers a hook call with.
type hookAnswer struct {
	Decision string `json:"decision"`
	Error    *struct {
		Condition string `json:"condition"`
		Text      string `json:"text"`
	} `json:"error"`
	Stanza string `json:"stanza"`
}

// ask calls the service's hook within its time budget; no answer, or one
// that makes no sense, is the hook's OnTimeout. Failures are logged at
// most once per service per interval, with their count.
func (m *Manager) ask(ctx context.Context, svc *Service, h HookConfig, kind string, s router.Stanza) router.Decision {
	d, failure, err := m.call(ctx, svc, h, kind, s)
	if failure == "" {
		if n := m.warn.answered(svc.Name); n > 0 {
			m.log.Info("hook answers again", "service", svc.Name, "hook", kind, "failures_not_logged", n)
		}
		return d
	}
	if log, n := m.warn.failed(svc.Name, m.now()); log {
		attrs := []any{"service", svc.Name, "hook", kind, "applied", h.OnTimeout, "count", n}
		if err != nil {
			attrs = append(attrs, "err", err)
		}
		m.log.Warn(failure, attrs...)
	}
	if h.OnTimeout == "deny" {
		return router.Decision{Deny: true, Condition: stanza.ServiceUnavailable, Text: "The stanza could not be checked."}
	}
	return router.Decision{}
}

// call makes one hook call: it returns the decision, or why there is
// none (the warning to log, with the error if any).
func (m *Manager) call(ctx context.Context, svc *Service, h HookConfig, kind string, s router.Stanza) (router.Decision, string, error) {
	// The user is the service's, as in the events of its transactions:
	// the addressee it watches, else the sender; a room's occupant.
	user := s.From.BareString()
	if kind != HookRoomMessage && s.To.Local() != "" && svc.Watches(s.To.BareString()) {
		user = s.To.BareString()
	}
	ev := Event{Type: kind, Time: m.now(), User: user, From: s.El.Attr("from"), To: s.El.Attr("to"),
		Stanza: string(s.El.AppendXML(nil, xmlstream.NSClient))}
	if s.From.IsZero() {
		ev.From = ""
	}
	switch s.El.Local {
	case stanza.Message:
		ev.Message = messageOf(s.El)
	case stanza.Presence:
		ev.Subscription = s.El.Attr("type")
	}
	body, err := json.Marshal(struct {
		Event Event `json:"event"`
	}{ev})
	if err != nil {
		return router.Decision{}, "hook event not encoded", err
	}
	ctx, cancel := context.WithTimeout(ctx, h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(svc.URL, "/")+"/hooks/"+kind, bytes.NewReader(body))
	if err != nil {
		return router.Decision{}, "hook unanswered", err
	}
	req.Header.Set("Authorization", "Bearer "+svc.ServerToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.deps.Client.Do(req)
	if err != nil {
		return router.Decision{}, "hook unanswered", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return router.Decision{}, "hook unanswered", err
	}
	if resp.StatusCode/100 != 2 {
		return router.Decision{}, "hook answered badly", fmt.Errorf("status %d", resp.StatusCode)
	}
	var a hookAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return router.Decision{}, "hook answered badly", err
	}
	switch a.Decision {
	case "allow":
		return router.Decision{}, "", nil
	case "deny":
		d := router.Decision{Deny: true}
		if a.Error != nil {
			d.Condition, d.Text = a.Error.Condition, a.Error.Text
		}
		if d.Condition != "" && !stanza.KnownCondition(d.Condition) {
			d.Condition = stanza.Forbidden
		}
		return d, "", nil
	case "replace":
		el, err := xmlstream.ParseStanza([]byte(a.Stanza), xmlstream.NSClient)
		if err != nil || el.Local != s.El.Local {
			return router.Decision{}, "hook replaced with what is not a stanza of the kind", err
		}
		return router.Decision{Replace: el}, "", nil
	}
	return router.Decision{}, "hook answered an unknown decision", fmt.Errorf("decision %q", a.Decision)
}
