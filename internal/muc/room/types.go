package room

import "time"

// Namespaces the engine reads and writes.
const (
	NS          = "http://jabber.org/protocol/muc"
	NSUser      = NS + "#user"
	NSAdmin     = NS + "#admin"
	NSOwner     = NS + "#owner"
	NSRoomConf  = NS + "#roomconfig"
	NSRoomInfo  = NS + "#roominfo"
	NSRequest   = NS + "#request"
	NSRegister  = NS + "#register"
	NSStanzaID  = "urn:xmpp:sid:0"
	NSOccupant  = "urn:xmpp:occupant-id:0"
	NSDelay     = "urn:xmpp:delay"
	NSPing      = "urn:xmpp:ping"
	NSVCard     = "vcard-temp"
	NSVCardUpd  = "vcard-temp:x:update"
	NSIQReg     = "jabber:iq:register"
	NSModerate  = "urn:xmpp:message-moderate:1"
	NSRetract   = "urn:xmpp:message-retract:1"
	NSConfInv   = "jabber:x:conference"
	NSMAM       = "urn:xmpp:mam:2"
	NSDiscoInfo = "http://jabber.org/protocol/disco#info"
	NSDiscoItem = "http://jabber.org/protocol/disco#items"
)

// Role is an occupant's role in the room (XEP-0045 §5.1), ordered by
// privilege.
type Role int

// Roles.
const (
	RoleNone Role = iota
	RoleVisitor
	RoleParticipant
	RoleModerator
)

var roleNames = [...]string{"none", "visitor", "participant", "moderator"}

func (r Role) String() string { return roleNames[r] }

// ParseRole reads a role attribute.
func ParseRole(s string) (Role, bool) {
	for i, n := range roleNames {
		if n == s {
			return Role(i), true
		}
	}
	return RoleNone, false
}

// Affiliation is a user's lasting relation to the room (XEP-0045 §5.2),
// ordered by privilege.
type Affiliation int

// Affiliations.
const (
	Outcast Affiliation = iota
	None
	Member
	Admin
	Owner
)

var affNames = [...]string{"outcast", "none", "member", "admin", "owner"}

func (a Affiliation) String() string { return affNames[a] }

// ParseAffiliation reads an affiliation attribute.
func ParseAffiliation(s string) (Affiliation, bool) {
	for i, n := range affNames {
		if n == s {
			return Affiliation(i), true
		}
	}
	return None, false
}

// Record is one stored affiliation: what the room's user persists.
type Record struct {
	// JID is a bare JID, or a domain for a whole server.
	JID         string
	Affiliation Affiliation
	// Nick is the nickname the JID registered (XEP-0045 §7.10), reserved
	// for it in the room.
	Nick   string
	Reason string
}

// Roles as a set, for the configuration fields that list roles.
type roleSet uint8

func (s roleSet) has(r Role) bool { return s&(1<<r) != 0 }

// Who may see occupants' real JIDs (muc#roomconfig_whois).
const (
	WhoisModerators = "moderators" // semi-anonymous
	WhoisAnyone     = "anyone"     // non-anonymous
)

// Who may send private messages (muc#roomconfig_allowpm).
const (
	PMAnyone       = "anyone"
	PMParticipants = "participants"
	PMModerators   = "moderators"
	PMNone         = "none"
)

// Config is a room's configuration (muc#roomconfig, XEP-0045 §15.5.3).
type Config struct {
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	Lang        string `json:"lang,omitempty"`
	Persistent  bool   `json:"persistent,omitempty"`
	Public      bool   `json:"public,omitempty"`
	MembersOnly bool   `json:"members_only,omitempty"`
	Moderated   bool   `json:"moderated,omitempty"`
	// Password protects the room when not empty.
	Password string `json:"password,omitempty"`
	// Whois is WhoisModerators or WhoisAnyone.
	Whois string `json:"whois"`
	// ChangeSubject lets participants, not only moderators, change the
	// subject.
	ChangeSubject bool `json:"change_subject,omitempty"`
	// AllowInvites lets participants, not only admins, invite; in a
	// members-only room their invitations make the invitee a member.
	AllowInvites bool `json:"allow_invites,omitempty"`
	// AllowPM is one of the PM values.
	AllowPM string `json:"allow_pm"`
	// MaxUsers is the most occupants; 0 is the service's limit.
	MaxUsers int `json:"max_users,omitempty"`
	// HistoryLength is how many messages a newcomer may receive.
	HistoryLength int `json:"history_length"`
	// Logging archives the room's messages (XEP-0313).
	Logging bool `json:"logging,omitempty"`
	// VoiceRequests lets visitors ask moderators for voice.
	VoiceRequests bool `json:"voice_requests,omitempty"`
	// Broadcast lists the roles whose presence occupants receive;
	// GetMemberList the roles that may read the member list.
	Broadcast     []string `json:"broadcast"`
	GetMemberList []string `json:"get_member_list"`
}

// Limits bound what a room accepts; the service sets them.
type Limits struct {
	// MaxUsers caps Config.MaxUsers (and is used when it is 0).
	MaxUsers int
	// MaxHistory caps Config.HistoryLength and the history kept in memory.
	MaxHistory int
	// ExtraForAdmins is how many owners and admins may join a full room.
	ExtraForAdmins int
	// MessageRate is how many messages an occupant may send per second
	// (averaged over MessageBurst); 0 does not limit.
	MessageRate  float64
	MessageBurst int
	// MaxPending is how many IQs forwarded between occupants may await
	// their answer.
	MaxPending int
}

// DefaultLimits are the limits Prosody and ejabberd users find familiar.
func DefaultLimits() Limits {
	return Limits{MaxUsers: 10000, MaxHistory: 50, ExtraForAdmins: 10, MessageRate: 5, MessageBurst: 20, MaxPending: 1000}
}

// DefaultConfig is the configuration of a new room: public, open,
// semi-anonymous, temporary, with archiving on when the service archives.
func DefaultConfig() Config {
	return Config{
		Public:        true,
		Whois:         WhoisModerators,
		AllowPM:       PMAnyone,
		HistoryLength: 20,
		Logging:       true,
		Broadcast:     []string{"moderator", "participant", "visitor"},
		GetMemberList: []string{"moderator", "participant", "visitor"},
	}
}

// Subject is the room's subject and who set it.
type Subject struct {
	Text  string    `json:"text,omitempty"`
	By    string    `json:"by,omitempty"` // the setter's nick, "" for the room
	Stamp time.Time `json:"stamp,omitzero"`
}

// State is what a room's user persists for a persistent room, apart
// from its affiliations: the configuration, the subject, and the secret
// behind occupant ids.
type State struct {
	Config  Config    `json:"config"`
	Subject Subject   `json:"subject"`
	Secret  string    `json:"secret"`
	Created time.Time `json:"created"`
	// Creator is the bare JID of who created the room, for the limit of
	// rooms per user.
	Creator string `json:"creator,omitempty"`
	// Locked is set while the room awaits its initial configuration
	// (XEP-0045 §10.1): nobody but its owner may enter.
	Locked bool `json:"locked,omitempty"`
	// AvatarHash is the SHA-1 of the vCard photo (XEP-0486), "" if none.
	AvatarHash string `json:"avatar_hash,omitempty"`
}

func parseRoles(l []string) roleSet {
	var s roleSet
	for _, n := range l {
		if r, ok := ParseRole(n); ok {
			s |= 1 << r
		}
	}
	return s
}
