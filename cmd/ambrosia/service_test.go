package main

import "testing"

func TestCheckHostPort(t *testing.T) {
	tests := []struct {
		v  string
		ok bool
	}{
		{"", true},
		{"xmpp.example.net", true},
		{"xmpp.example.net:5222", true},
		{"[2001:db8::1]:5222", true},
		{"xmpp.example.net:0", false},
		{"xmpp.example.net:99999", false},
		{":5222", false},
		{"a b:5222", false},
		{"x<y", false},
	}
	for _, tt := range tests {
		if err := checkHostPort(tt.v); (err == nil) != tt.ok {
			t.Errorf("checkHostPort(%q) = %v, want ok=%v", tt.v, err, tt.ok)
		}
	}
}
