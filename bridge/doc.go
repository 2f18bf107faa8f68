// Package bridge puts another chat system on the XMPP network. The
// author of a bridge writes a Network: how to log in, send a message,
// join a group chat on that system, and reports what happens there to
// Events. This package does the rest, the same for every network:
//
//   - addresses: the network's users become user@bridge.domain (escaped as
//     XEP-0106 says), its group chats rooms of the same domain, run on the
//     room engine of Ambrosia's conference service;
//   - translation without loss: messages with corrections, replies,
//     reactions, retractions, attachments, chat states and read markers in
//     both directions, and any XMPP extension the model does not know
//     carried through as an opaque payload;
//   - the id map between the network's message ids and XMPP's, kept across
//     restarts, so that a correction or a reaction finds its message;
//   - registration (XEP-0077) with credentials sealed at rest, or logins
//     in steps (a code sent by SMS, a QR code to scan) as the gateway's
//     ad-hoc commands (XEP-0050), logins on the user's presence and
//     logins again with backoff, contacts put in users' rosters once
//     (XEP-0356 where the server grants it, XEP-0144 elsewhere or where
//     the server refuses), discovery announcing exactly what the network
//     supports,
//     XMPP errors instead of silent drops, a rate limit toward the network;
//   - the way onto the XMPP network, chosen by configuration: as an
//     external component (XEP-0114) of any server, over Ambrosia's service
//     protocol (acknowledged, resent after a crash, several instances), or
//     as a federated server of its own.
//
// A Network in Puppet mode shows its users to anybody; in Transport mode
// (XEP-0100) each XMPP user logs in to the network with an account of
// their own. A network whose logins take more than a form (a code, a QR
// code) implements LoginFlows: each Step is shown as a data form of the
// gateway's login command, and the Done that ends the flow is kept as the
// user's registration, so that later logins, on the user's presence, take
// no step (see ExampleLoginFlows).
//
// The shape follows mautrix-go's bridgev2 for Matrix: a connector per
// network, a central module with the generic bridge logic, and the
// connection to the federated network; here the central module also hosts
// rooms and rosters, and there are three connections to choose from.
package bridge
