package room

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/ambrosia-xmpp/ambrosia/internal/dataform"
	"github.com/ambrosia-xmpp/ambrosia/internal/jid"
	"github.com/ambrosia-xmpp/ambrosia/internal/stanza"
	"github.com/ambrosia-xmpp/ambrosia/internal/xmlstream"
)

// Configuration field names (XEP-0045 §15.5.3).
const (
	fRoomName     = "muc#roomconfig_roomname"
	fRoomDesc     = "muc#roomconfig_roomdesc"
	fLang         = "muc#roomconfig_lang"
	fPersistent   = "muc#roomconfig_persistentroom"
	fPublic       = "muc#roomconfig_publicroom"
	fMembersOnly  = "muc#roomconfig_membersonly"
	fModerated    = "muc#roomconfig_moderatedroom"
	fPasswordProt = "muc#roomconfig_passwordprotectedroom"
	fSecret       = "muc#roomconfig_roomsecret"
	fWhois        = "muc#roomconfig_whois"
	fChangeSubj   = "muc#roomconfig_changesubject"
	fInvites      = "muc#roomconfig_allowinvites"
	fAllowPM      = "muc#roomconfig_allowpm"
	fMaxUsers     = "muc#roomconfig_maxusers"
	fHistory      = "muc#maxhistoryfetch"
	fLogging      = "muc#roomconfig_enablelogging"
	fBroadcast    = "muc#roomconfig_presencebroadcast"
	fMemberList   = "muc#roomconfig_getmemberlist"
	fVoiceReq     = "muc#roomconfig_allowvoicerequests"
	fAdmins       = "muc#roomconfig_roomadmins"
	fOwners       = "muc#roomconfig_roomowners"
)

var roleOptions = []dataform.Option{{Label: "Moderator", Value: "moderator"}, {Label: "Participant", Value: "participant"}, {Label: "Visitor", Value: "visitor"}}

// configForm is the room configuration form an owner fills in.
func (r *Room) configForm() dataform.Form {
	c := r.state.Config
	b := func(v bool) []string { return []string{dataform.FormatBool(v)} }
	f := dataform.Form{Type: dataform.TypeForm, FormType: NSRoomConf, Title: "Configuration of " + r.jid.String(),
		Instructions: "Complete this form to change the room's configuration."}
	f.Add(dataform.Field{Var: fRoomName, Type: dataform.TextSingle, Label: "Natural-language room name", Values: []string{c.Name}})
	f.Add(dataform.Field{Var: fRoomDesc, Type: dataform.TextSingle, Label: "Short description of the room", Values: []string{c.Description}})
	f.Add(dataform.Field{Var: fLang, Type: dataform.TextSingle, Label: "Natural language of the discussions", Values: []string{c.Lang}})
	f.Add(dataform.Field{Var: fPersistent, Type: dataform.Boolean, Label: "Make room persistent", Values: b(c.Persistent)})
	f.Add(dataform.Field{Var: fPublic, Type: dataform.Boolean, Label: "List the room in the public directory", Values: b(c.Public)})
	f.Add(dataform.Field{Var: fMembersOnly, Type: dataform.Boolean, Label: "Only members may enter", Values: b(c.MembersOnly)})
	f.Add(dataform.Field{Var: fModerated, Type: dataform.Boolean, Label: "Only participants may speak (moderated room)", Values: b(c.Moderated)})
	f.Add(dataform.Field{Var: fPasswordProt, Type: dataform.Boolean, Label: "A password is required to enter", Values: b(c.Password != "")})
	f.Add(dataform.Field{Var: fSecret, Type: dataform.TextPrivate, Label: "Password", Values: []string{c.Password}})
	f.Add(dataform.Field{Var: fWhois, Type: dataform.ListSingle, Label: "Who may discover occupants' real addresses", Values: []string{c.Whois},
		Options: []dataform.Option{{Label: "Moderators only", Value: WhoisModerators}, {Label: "Anyone", Value: WhoisAnyone}}})
	f.Add(dataform.Field{Var: fChangeSubj, Type: dataform.Boolean, Label: "Participants may change the subject", Values: b(c.ChangeSubject)})
	f.Add(dataform.Field{Var: fInvites, Type: dataform.Boolean, Label: "Participants may invite others", Values: b(c.AllowInvites)})
	f.Add(dataform.Field{Var: fAllowPM, Type: dataform.ListSingle, Label: "Who may send private messages", Values: []string{c.AllowPM},
		Options: []dataform.Option{{Label: "Anyone", Value: PMAnyone}, {Label: "Participants", Value: PMParticipants}, {Label: "Moderators", Value: PMModerators}, {Label: "Nobody", Value: PMNone}}})
	maxUsers := "none"
	if c.MaxUsers > 0 {
		maxUsers = strconv.Itoa(c.MaxUsers)
	}
	var opts []dataform.Option
	for _, n := range []int{10, 20, 30, 50, 100, 200, 500, 1000, 5000, 10000} {
		if lim := r.deps.Limits.MaxUsers; lim == 0 || n <= lim {
			opts = append(opts, dataform.Option{Value: strconv.Itoa(n)})
		}
	}
	f.Add(dataform.Field{Var: fMaxUsers, Type: dataform.ListSingle, Label: "Maximum number of occupants", Values: []string{maxUsers},
		Options: append([]dataform.Option{{Label: "No limit but the service's", Value: "none"}}, opts...)})
	f.Add(dataform.Field{Var: fHistory, Type: dataform.TextSingle, Label: "Messages of history sent to newcomers", Values: []string{strconv.Itoa(c.HistoryLength)}})
	if r.deps.Archiving {
		f.Add(dataform.Field{Var: fLogging, Type: dataform.Boolean, Label: "Archive the discussions (XEP-0313)", Values: b(c.Logging)})
	}
	f.Add(dataform.Field{Var: fBroadcast, Type: dataform.ListMulti, Label: "Roles whose presence is broadcast", Values: c.Broadcast, Options: roleOptions})
	f.Add(dataform.Field{Var: fMemberList, Type: dataform.ListMulti, Label: "Roles that may read the member list", Values: c.GetMemberList, Options: roleOptions})
	f.Add(dataform.Field{Var: fVoiceReq, Type: dataform.Boolean, Label: "Visitors may ask for voice", Values: b(c.VoiceRequests)})
	var admins, owners []string
	for _, a := range r.affs {
		switch a.Affiliation {
		case Admin:
			admins = append(admins, a.JID)
		case Owner:
			owners = append(owners, a.JID)
		}
	}
	slices.Sort(admins)
	slices.Sort(owners)
	f.Add(dataform.Field{Var: fAdmins, Type: dataform.JIDMulti, Label: "Room admins", Values: admins})
	f.Add(dataform.Field{Var: fOwners, Type: dataform.JIDMulti, Label: "Room owners", Values: owners})
	return f
}

// formError is a refused configuration: the stanza error condition and
// a text naming the field.
type formError struct{ cond, text string }

func (e *formError) Error() string { return e.text }

// Condition is the stanza error condition of the refusal.
func (e *formError) Condition() string { return e.cond }

func badValue(field string, err error) *formError {
	return &formError{stanza.BadRequest, fmt.Sprintf("Invalid value for %s: %v", field, err)}
}

// applyForm returns the configuration a submitted form sets, and the
// owner and admin lists when it sets them. Unknown fields are refused
// rather than ignored, so that an owner never believes a setting took
// effect when it did not.
func (r *Room) applyForm(f dataform.Form) (Config, []string, []string, bool, bool, *formError) {
	c := r.state.Config
	if f.FormType != "" && f.FormType != NSRoomConf {
		return c, nil, nil, false, false, &formError{stanza.BadRequest, "The form is not a room configuration form."}
	}
	var admins, owners []string
	var setAdmins, setOwners bool
	protected := c.Password != ""
	for i := range f.Fields {
		fl := &f.Fields[i]
		v := fl.Value()
		var err error
		boolean := func(dst *bool) { *dst, err = dataform.Bool(v) }
		switch fl.Var {
		case fRoomName:
			c.Name = v
		case fRoomDesc:
			c.Description = v
		case fLang:
			c.Lang = v
		case fPersistent:
			boolean(&c.Persistent)
		case fPublic:
			boolean(&c.Public)
		case fMembersOnly:
			boolean(&c.MembersOnly)
		case fModerated:
			boolean(&c.Moderated)
		case fPasswordProt:
			boolean(&protected)
		case fSecret:
			c.Password = v
		case fWhois:
			if v != WhoisModerators && v != WhoisAnyone {
				err = fmt.Errorf("%q is neither moderators nor anyone", v)
			}
			c.Whois = v
		case fChangeSubj:
			boolean(&c.ChangeSubject)
		case fInvites:
			boolean(&c.AllowInvites)
		case fAllowPM:
			switch v {
			case PMAnyone, PMParticipants, PMModerators, PMNone:
				c.AllowPM = v
			default:
				err = fmt.Errorf("%q is not one of anyone, participants, moderators, none", v)
			}
		case fMaxUsers:
			if v == "none" || v == "" {
				c.MaxUsers = 0
				break
			}
			var n int
			n, err = strconv.Atoi(v)
			if err == nil && (n < 1 || (r.deps.Limits.MaxUsers > 0 && n > r.deps.Limits.MaxUsers)) {
				err = fmt.Errorf("%d is outside 1..%d", n, r.deps.Limits.MaxUsers)
			}
			c.MaxUsers = n
		case fHistory:
			var n int
			n, err = strconv.Atoi(v)
			if err == nil && (n < 0 || n > r.deps.Limits.MaxHistory) {
				err = fmt.Errorf("%d is outside 0..%d", n, r.deps.Limits.MaxHistory)
			}
			c.HistoryLength = n
		case fLogging:
			if !r.deps.Archiving {
				return c, nil, nil, false, false, &formError{stanza.NotAcceptable, "This service keeps no archives: " + fl.Var + " cannot be set."}
			}
			boolean(&c.Logging)
		case fBroadcast, fMemberList:
			for _, n := range fl.Values {
				if role, ok := ParseRole(n); !ok || role == RoleNone {
					err = fmt.Errorf("%q is not a role", n)
				}
			}
			if fl.Var == fBroadcast {
				c.Broadcast = slices.Clone(fl.Values)
			} else {
				c.GetMemberList = slices.Clone(fl.Values)
			}
		case fVoiceReq:
			boolean(&c.VoiceRequests)
		case fAdmins, fOwners:
			var l []string
			for _, n := range fl.Values {
				j, e := jid.Parse(n)
				if e != nil || j.IsZero() {
					err = fmt.Errorf("%q is not a JID", n)
					break
				}
				l = append(l, j.BareString())
			}
			if fl.Var == fAdmins {
				admins, setAdmins = l, true
			} else {
				owners, setOwners = l, true
			}
		default:
			return c, nil, nil, false, false, &formError{stanza.NotAcceptable, "Unknown configuration field " + strconv.Quote(fl.Var) + "."}
		}
		if err != nil {
			return c, nil, nil, false, false, badValue(fl.Var, err)
		}
	}
	if !protected {
		c.Password = ""
	} else if c.Password == "" {
		// §10.1.3: a password-protected room needs a password.
		return c, nil, nil, false, false, &formError{stanza.NotAcceptable, "A password-protected room needs a password."}
	}
	if setOwners && len(owners) == 0 {
		return c, nil, nil, false, false, &formError{stanza.Conflict, "A room needs at least one owner."}
	}
	return c, admins, owners, setAdmins, setOwners, nil
}

// ownerIQ handles the owner namespace: the configuration form and its
// submission (XEP-0045 §10.1, §10.2) and destruction (§10.9).
func (r *Room) ownerIQ(el, q *xmlstream.Element, from, to jid.JID, actor *occupant) {
	fail := func(cond, text string) { r.errorReply(el, from, to, cond, text) }
	if r.affiliation(from.Bare()) != Owner {
		fail(stanza.Forbidden, "Only owners may configure or destroy the room.")
		return
	}
	if el.Attr("type") == "get" {
		res := stanza.Result(el)
		f := r.configForm()
		res.AddChild(xmlstream.NewElement(NSOwner, "query")).AddChild(f.Element())
		r.reply(el, from, to, res)
		return
	}
	if d := q.Child(NSOwner, "destroy"); d != nil {
		r.destroy(d)
		r.reply(el, from, to, stanza.Result(el))
		return
	}
	x := q.Child(dataform.NS, "x")
	if x == nil {
		fail(stanza.BadRequest, "A configuration form or a destroy request was expected.")
		return
	}
	f, err := dataform.Parse(x)
	if err != nil {
		fail(stanza.BadRequest, err.Error())
		return
	}
	switch f.Type {
	case dataform.TypeCancel:
		if r.state.Locked {
			// §10.1.3: cancelling the initial configuration destroys the room.
			r.destroy(nil)
		}
		r.reply(el, from, to, stanza.Result(el))
		return
	case dataform.TypeSubmit:
	default:
		fail(stanza.BadRequest, "The form must be submitted.")
		return
	}
	c, admins, owners, setAdmins, setOwners, ferr := r.applyForm(f)
	if ferr != nil {
		fail(ferr.cond, ferr.text)
		return
	}
	old := r.state.Config
	r.state.Config = c
	r.res.StateChanged = true
	wasLocked := r.state.Locked
	r.state.Locked = false
	r.reply(el, from, to, stanza.Result(el))
	if setOwners {
		r.replaceList(Owner, owners, actor)
	}
	if setAdmins {
		r.replaceList(Admin, admins, actor)
	}
	r.configChanged(old, wasLocked)
}

// replaceList makes list the JIDs with affiliation a: those added get it,
// those missing drop to none.
func (r *Room) replaceList(a Affiliation, list []string, actor *occupant) {
	for _, rec := range r.Affiliations() {
		if rec.Affiliation == a && !slices.Contains(list, rec.JID) {
			r.setAffiliation(Record{JID: rec.JID, Affiliation: None}, actor)
		}
	}
	for _, j := range list {
		if cur := r.affs[j]; cur == nil || cur.Affiliation != a {
			r.setAffiliation(Record{JID: j, Affiliation: a}, actor)
		}
	}
}

// configChanged tells the occupants what changed (§10.2.1) and applies
// the consequences: non-members leave a room that became members-only.
func (r *Room) configChanged(old Config, wasLocked bool) {
	c := r.state.Config
	if c.MembersOnly && !old.MembersOnly {
		for _, o := range r.sortedOccupants() {
			if r.affiliation(o.bare) < Member {
				r.removeOccupant(o, removal{codes: []string{"322"}})
			}
		}
	}
	if c.HistoryLength != old.HistoryLength {
		r.trimHistory()
	}
	if wasLocked {
		return
	}
	var codes []string
	if c.Whois != old.Whois {
		if c.Whois == WhoisAnyone {
			codes = append(codes, "172")
		} else {
			codes = append(codes, "173")
		}
	}
	if c.Logging != old.Logging {
		if c.Logging {
			codes = append(codes, "170")
		} else {
			codes = append(codes, "171")
		}
	}
	if len(codes) == 0 {
		codes = append(codes, "104")
	}
	r.statusMessage(codes...)
}

// statusMessage sends a groupchat message from the room with status
// codes to every occupant.
func (r *Room) statusMessage(codes ...string) {
	m := xmlstream.NewElement(xmlstream.NSClient, stanza.Message)
	m.SetAttr("type", "groupchat")
	m.SetAttr("from", r.jid.String())
	m.SetAttr("id", r.deps.NewID())
	x := m.AddChild(xmlstream.NewElement(NSUser, "x"))
	for _, c := range codes {
		x.AddChild(xmlstream.NewElement(NSUser, "status")).SetAttr("code", c)
	}
	r.res.send(m, r.recipients()...)
}

// destroy ends the room (§10.9): every occupant leaves with the destroy
// notice, and the room's user removes what it stored.
func (r *Room) destroy(d *xmlstream.Element) {
	notice := xmlstream.NewElement(NSUser, "destroy")
	if d != nil {
		if alt := d.Attr("jid"); alt != "" {
			notice.SetAttr("jid", alt)
		}
		if re := d.Child(NSOwner, "reason"); re != nil {
			notice.AddChild(xmlstream.NewElement(NSUser, "reason")).AddText(re.Text())
		}
		if pw := d.Child(NSOwner, "password"); pw != nil {
			notice.AddChild(xmlstream.NewElement(NSUser, "password")).AddText(pw.Text())
		}
	}
	// Each occupant learns only of its own removal: the room is gone for
	// all at once.
	none, noRole := None, RoleNone
	x := &presExtra{typ: "unavailable", destroy: notice, aff: &none, role: &noRole}
	for _, o := range r.sortedOccupants() {
		for _, s := range o.sessions {
			r.res.send(r.selfPresence(o, s.jid, x, []string{"110"}, ""), s.jid)
		}
	}
	clear(r.occ)
	clear(r.bySess)
	r.count = 0
	r.res.Destroyed = true
}
