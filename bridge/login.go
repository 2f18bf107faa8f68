package bridge

import "context"

// LoginFlows is implemented by a Network in Transport mode whose users
// log in in several steps: a code the network sends by SMS or shows in an
// authenticator app, a QR code to scan with the network's phone app, a
// choice between ways to log in. XMPP users run the flow as the gateway's
// ad-hoc command (XEP-0050) "jabber:iq:register": the bridge shows each
// Step as a data form, and keeps what the flow ends with as the user's
// registration, as one made with XEP-0077, so that later logins, on the
// user's presence, go through Network.Login with no step at all.
//
// A network may implement both ways: the registration fields of its
// Description for users whose login takes one step, and a flow for the
// others (or for everybody, with no registration fields).
type LoginFlows interface {
	// StartLogin begins a login of an XMPP user and returns its first
	// step. user holds their bare JID, and the credentials they
	// registered before, if any. ctx lasts as long as the login: it ends
	// when the login is done, canceled by the user, replaced by another
	// login of theirs or expired, and whatever the flow holds meanwhile
	// (a connection waiting for a QR code to be scanned) should be
	// released then. A session the flow opens reports to events.
	StartLogin(ctx context.Context, user Account, events Events) (Step, error)
}

// Step is what a login asks of the user next: a *Form to fill in, a
// *Display to act on outside XMPP, or *Done when the user is logged in.
type Step interface{ isStep() }

// Form asks the user to fill in fields.
type Form struct {
	Instructions string
	Fields       []Field
	// Submit is given the values the user entered, by field name, once
	// every required field has one and every field with choices holds one
	// of them; it returns the next step. An error wrapping
	// ErrBadCredentials (a wrong code) keeps the user on the form, told
	// what the error says, to try again; any other error ends the login.
	Submit func(ctx context.Context, values map[string]string) (Step, error)
}

// Display shows the user a code to act on outside XMPP: one to type in
// the network's app, or, with QR set, the data of a QR code to scan with
// it.
type Display struct {
	Instructions string
	Code         string
	QR           bool
	// Wait returns the next step once the network confirms: usually Done,
	// or another Display when a QR code is renewed. The bridge calls it as
	// soon as the step is shown, with the login's ctx, and a Done it
	// returns logs the user in whether or not they go on in their client
	// meanwhile. An error ends the login.
	Wait func(ctx context.Context) (Step, error)
}

// Done ends a login: the user is logged in.
type Done struct {
	// Credentials are kept as the user's registration, sealed: later
	// logins get them in Account.Credentials. They should need no step
	// (a token the network gave is better than a password).
	Credentials map[string]string
	// Session, when not nil, is the session the login opened, reporting
	// to the login's Events: it becomes the user's, so that their presence
	// needs no login of its own. It must outlive the login's ctx.
	Session Session
}

func (*Form) isStep()    {}
func (*Display) isStep() {}
func (*Done) isStep()    {}
