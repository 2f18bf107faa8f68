package loadtest

import (
	"bytes"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"testing"
)

// svgNode is a generic element of the plot, for checking its structure.
type svgNode struct {
	XMLName xml.Name
	Attrs   []xml.Attr `xml:",any,attr"`
	Text    string     `xml:",chardata"`
	Nodes   []svgNode  `xml:",any"`
}

func (n *svgNode) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n *svgNode) walk(f func(*svgNode)) {
	f(n)
	for i := range n.Nodes {
		n.Nodes[i].walk(f)
	}
}

// TestPlotSVG: one panel per series, each with its title, its unit on
// the y axis, the common x label, and a line through every point, drawn
// inside the panel with y growing upwards from 0.
func TestPlotSVG(t *testing.T) {
	series := []Series{
		{Name: "goroutines <go_goroutines>", Unit: "goroutines", Points: []Point{{0, 40}, {1, 120}, {2, 118}, {3, 41}}},
		{Name: "RSS", Unit: "MiB", Points: []Point{{0, 30.5}, {3, 33.8}}},
		{Name: "nothing scraped", Unit: "descriptors"},
	}
	var b bytes.Buffer
	if err := PlotSVG(&b, "churn & more", "minutes since the start", series); err != nil {
		t.Fatal(err)
	}
	var root svgNode
	if err := xml.Unmarshal(b.Bytes(), &root); err != nil {
		t.Fatalf("not well-formed XML: %v\n%s", err, b.String())
	}
	if root.XMLName.Local != "svg" || root.XMLName.Space != "http://www.w3.org/2000/svg" {
		t.Fatalf("root %v", root.XMLName)
	}
	var panels []*svgNode
	root.walk(func(n *svgNode) {
		if n.XMLName.Local == "g" && n.attr("class") == "panel" {
			panels = append(panels, n)
		}
	})
	if len(panels) != len(series) {
		t.Fatalf("%d panels, want %d", len(panels), len(series))
	}
	for i, p := range panels {
		s := series[i]
		var texts []string
		var line *svgNode
		p.walk(func(n *svgNode) {
			if n.XMLName.Local == "text" {
				texts = append(texts, n.Text)
			}
			if n.XMLName.Local == "polyline" {
				line = n
			}
		})
		all := strings.Join(texts, "|")
		for _, want := range []string{s.Name, s.Unit, "minutes since the start"} {
			if !strings.Contains(all, want) {
				t.Errorf("panel %d lacks the text %q: %s", i, want, all)
			}
		}
		if len(s.Points) == 0 {
			if line != nil {
				t.Errorf("panel %d: a line without points", i)
			}
			continue
		}
		if line == nil {
			t.Fatalf("panel %d: no line", i)
		}
		pts := strings.Fields(line.attr("points"))
		if len(pts) != len(s.Points) {
			t.Fatalf("panel %d: %d points drawn, want %d", i, len(pts), len(s.Points))
		}
		top := float64(plotTop + i*panelHeight)
		bottom := top + panelInner
		prevX, ys := -1.0, make([]float64, len(pts))
		for k, xy := range pts {
			xs, yv, _ := strings.Cut(xy, ",")
			x, _ := strconv.ParseFloat(xs, 64)
			y, _ := strconv.ParseFloat(yv, 64)
			if x <= prevX || x < plotLeft || x > plotWidth-plotRight || y < top || y > bottom {
				t.Fatalf("panel %d: point %s outside the panel or out of order", i, xy)
			}
			prevX, ys[k] = x, y
		}
		// A larger value is drawn higher (a smaller y).
		for k := 1; k < len(ys); k++ {
			if (s.Points[k].Y > s.Points[k-1].Y) != (ys[k] < ys[k-1]) {
				t.Errorf("panel %d: points %d and %d drawn the wrong way up", i, k-1, k)
			}
		}
	}
	if !strings.Contains(b.String(), "churn &amp; more") {
		t.Error("the title is not escaped")
	}
}

func TestNiceStep(t *testing.T) {
	for _, tc := range []struct{ raw, want float64 }{
		{0, 1}, {0.3, 0.5}, {1, 1}, {1.2, 2}, {3, 5}, {7, 10}, {30, 50}, {260, 500}, {math.NaN(), 1},
	} {
		if got := niceStep(tc.raw); got != tc.want {
			t.Errorf("niceStep(%v) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

func TestParseExposition(t *testing.T) {
	in := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2345e+07
ambrosia_limit_hits_total{edge="c2s",limit="x y"} 3
process_open_fds 17 1700000000000
`
	m, err := parseExposition(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if m["go_goroutines"] != 42 || m["go_memstats_heap_inuse_bytes"] != 12345000 || m["process_open_fds"] != 17 || len(m) != 3 {
		t.Errorf("parsed %v", m)
	}
	if _, err := parseExposition(strings.NewReader("go_goroutines many\n")); err == nil {
		t.Error("a bad value accepted")
	}
}
