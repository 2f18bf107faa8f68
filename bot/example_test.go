package bot_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/signal"

	"github.com/ambrosia-xmpp/ambrosia/bot"
)

// The whole life of a bot: configure, register handlers, run until
// interrupted. It logs in to any server as calc@example.org and answers
// both plain messages and JSON requests.
func Example() {
	b, err := bot.New(bot.Config{JID: "calc@example.org", Password: os.Getenv("BOT_PASSWORD")}, slog.Default())
	if err != nil {
		slog.Error("bot", "err", err)
		os.Exit(2)
	}
	b.OnMessage(func(ctx context.Context, m *bot.Message) {
		if m.Body != "" {
			_ = b.Send(ctx, m.From, "Send me JSON, such as {\"a\":1,\"b\":2}.")
		}
	})
	b.OnJSON(bot.HandleJSON(func(ctx context.Context, from string, r struct{ A, B int }) (any, error) {
		return map[string]int{"sum": r.A + r.B}, nil
	}))
	b.OnSubscription(func(ctx context.Context, r *bot.SubscriptionRequest) {
		_ = r.Approve(ctx) // anyone may see that the bot is online
	})
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := b.Run(ctx); err != nil {
		slog.Error("bot", "err", err)
		os.Exit(1)
	}
}

// HandleJSON decodes a request into the handler's own type; what the
// handler returns goes back as JSON, and a request that does not decode
// is answered with bad-request.
func ExampleHandleJSON() {
	type request struct {
		Op   string
		A, B int
	}
	h := bot.HandleJSON(func(ctx context.Context, from string, r request) (any, error) {
		if r.Op != "add" {
			return nil, &bot.Error{Condition: "bad-request", Text: "unknown op"}
		}
		return map[string]int{"result": r.A + r.B}, nil
	})
	ctx := context.Background()
	fmt.Println(h(ctx, "alice@example.org/phone", json.RawMessage(`{"op":"add","a":1,"b":2}`)))
	fmt.Println(h(ctx, "alice@example.org/phone", json.RawMessage(`{"op":"div"}`)))
	fmt.Println(h(ctx, "alice@example.org/phone", json.RawMessage(`{"op":1}`)))
	// Output:
	// map[result:3] <nil>
	// <nil> xmpp error: bad-request: unknown op
	// <nil> xmpp error: bad-request: json: cannot unmarshal number into Go struct field request.Op of type string
}
