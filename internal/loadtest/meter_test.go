package loadtest

import (
	"errors"
	"testing"
)

func TestMeter(t *testing.T) {
	var none *Meter // a run without a display
	none.login(nil)
	none.send()
	none.SetPhase("x")
	if r := none.Read(); r != (MeterReading{}) {
		t.Errorf("a nil meter read %+v", r)
	}
	m := NewMeter()
	m.SetPhase("logging in")
	m.login(nil)
	m.login(nil)
	m.login(errors.New("refused"))
	m.seat()
	for range 3 {
		m.send()
	}
	for range 5 {
		m.deliver()
	}
	m.bounce()
	r := m.Read()
	r.Elapsed = 0
	want := MeterReading{Phase: "logging in", LoggedIn: 2, Failed: 1, Seated: 1, Sent: 3, Delivered: 5, Errors: 1}
	if r != want {
		t.Errorf("read %+v, want %+v", r, want)
	}
}
