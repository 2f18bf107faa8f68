package bridge_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"

	"github.com/ambrosia-xmpp/ambrosia/bridge"
)

// smsNetwork logs its users in with their phone number and a code it
// sends them by SMS (in this example, always 123456); the login ends
// with a token, which later logins use without any step.
type smsNetwork struct{}

func (smsNetwork) Describe() bridge.Description {
	return bridge.Description{Name: "SMS chat", Type: "sms", Mode: bridge.Transport}
}

func (smsNetwork) Login(ctx context.Context, user bridge.Account, ev bridge.Events) (bridge.Session, error) {
	if user.Credentials["token"] != "token-for-"+user.Credentials["phone"] {
		return nil, bridge.ErrBadCredentials
	}
	return smsSession{}, nil
}

func (smsNetwork) StartLogin(ctx context.Context, user bridge.Account, ev bridge.Events) (bridge.Step, error) {
	return &bridge.Form{
		Instructions: "Enter your phone number.",
		Fields:       []bridge.Field{{Name: "phone", Label: "Phone number", Required: true}},
		Submit: func(ctx context.Context, v map[string]string) (bridge.Step, error) {
			phone := v["phone"] // the network would send the code to it now
			return &bridge.Form{
				Instructions: "Enter the code sent to " + phone + ".",
				Fields:       []bridge.Field{{Name: "code", Label: "Code", Required: true}},
				Submit: func(ctx context.Context, v map[string]string) (bridge.Step, error) {
					if v["code"] != "123456" {
						return nil, fmt.Errorf("the code %s: %w", v["code"], bridge.ErrBadCredentials)
					}
					return &bridge.Done{Credentials: map[string]string{"phone": phone, "token": "token-for-" + phone}}, nil
				},
			}, nil
		},
	}, nil
}

type smsSession struct{}

func (smsSession) SendMessage(ctx context.Context, to bridge.UserID, m bridge.Message) (bridge.MessageID, error) {
	return "", nil
}

func (smsSession) Logout(ctx context.Context) error { return nil }

// A network whose users log in in steps, and what an XMPP client
// exchanges with its gateway to log in: the ad-hoc command
// jabber:iq:register (XEP-0050), one data form a step, a wrong code
// refused with a note, the user logged in at the end.
func ExampleLoginFlows() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	cfg := bridge.DefaultConfig()
	cfg.Domain = "sms.example.org"
	cfg.DataDir = dir
	cfg.Connect = bridge.Connect{Mode: "component", Server: "127.0.0.1:5347", Secret: "change me"}
	b, err := bridge.New(smsNetwork{}, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		fmt.Println(err)
		return
	}
	// The XMPP side, in this process: b.Run(ctx) would connect the
	// bridge to a server instead.
	answers := make(chan string, 100)
	l, err := b.ServeLocal(context.Background(), func(s []byte) {
		if strings.HasPrefix(string(s), "<iq") {
			answers <- string(s)
		}
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()

	sessionID := regexp.MustCompile(`sessionid='([^']*)'`)
	sid := ""
	run := func(command string) {
		err := l.Send([]byte("<iq type='set' id='c' from='juliet@example.com/phone' to='sms.example.org'>" +
			"<command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' " + command + "</command></iq>"))
		if err != nil {
			fmt.Println(err)
			return
		}
		a := <-answers
		if m := sessionID.FindStringSubmatch(a); m != nil {
			sid = m[1]
			a = strings.ReplaceAll(a, sid, "S")
		}
		// The answer's <command/>, without the <iq/> around it.
		a = strings.TrimSuffix(a[strings.Index(a, "<command"):], "</iq>")
		fmt.Println(a)
	}
	run("action='execute'>")
	run("sessionid='" + sid + "' action='next'><x xmlns='jabber:x:data' type='submit'><field var='phone'><value>+33612345678</value></field></x>")
	run("sessionid='" + sid + "' action='next'><x xmlns='jabber:x:data' type='submit'><field var='code'><value>111111</value></field></x>")
	run("sessionid='" + sid + "' action='next'><x xmlns='jabber:x:data' type='submit'><field var='code'><value>123456</value></field></x>")
	// Output:
	// <command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' sessionid='S' status='executing'><actions execute='next'><next/></actions><x xmlns='jabber:x:data' type='form'><title>Log in to SMS chat</title><instructions>Enter your phone number.</instructions><field var='phone' type='text-single' label='Phone number'><required/></field></x></command>
	// <command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' sessionid='S' status='executing'><actions execute='next'><next/></actions><x xmlns='jabber:x:data' type='form'><title>Log in to SMS chat</title><instructions>Enter the code sent to +33612345678.</instructions><field var='code' type='text-single' label='Code'><required/></field></x></command>
	// <command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' sessionid='S' status='executing'><actions execute='next'><next/></actions><note type='error'>the code 111111: bridge: credentials refused</note><x xmlns='jabber:x:data' type='form'><title>Log in to SMS chat</title><instructions>Enter the code sent to +33612345678.</instructions><field var='code' type='text-single' label='Code'><required/><value>111111</value></field></x></command>
	// <command xmlns='http://jabber.org/protocol/commands' node='jabber:iq:register' sessionid='S' status='completed'><note type='info'>You are logged in to SMS chat: from now on, your presence logs you in.</note></command>
}
