package loadtest

import (
	"fmt"
	"html"
	"io"
	"math"
	"strconv"
	"strings"
)

// Point is one sample of a series: X in the plot's x unit (minutes for a
// churn run), Y in the series' unit.
type Point struct{ X, Y float64 }

// Series is one panel of a plot.
type Series struct {
	// Name titles the panel and Unit labels its y axis.
	Name, Unit string
	Points     []Point
}

// Plot geometry, in SVG user units.
const (
	plotWidth   = 720
	panelHeight = 170
	plotLeft    = 80 // room for the y tick labels and the axis label
	plotRight   = 20
	plotTop     = 50 // room for the title
	panelGap    = 56 // room for the x tick labels and label between panels
	panelInner  = panelHeight - panelGap
)

// PlotSVG draws each series in its own panel, one above the other, with
// a common x axis labelled xLabel; every y axis starts at 0, so that a
// drift shows at its true size next to the level it drifts from. It is a
// small hand-written SVG so that the load client needs no plotting
// library.
func PlotSVG(w io.Writer, title, xLabel string, series []Series) error {
	xmax := 0.0
	for _, s := range series {
		for _, p := range s.Points {
			xmax = math.Max(xmax, p.X)
		}
	}
	xstep := niceStep(xmax / 8)
	xmax = math.Max(xstep, math.Ceil(xmax/xstep)*xstep)
	inner := float64(plotWidth - plotLeft - plotRight)
	height := plotTop + len(series)*panelHeight + 20
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="11">`+"\n",
		plotWidth, height, plotWidth, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%d" y="22" text-anchor="middle" font-size="14" font-weight="bold">%s</text>`+"\n", plotWidth/2, html.EscapeString(title))
	for k, s := range series {
		top := float64(plotTop + k*panelHeight)
		bottom := top + panelInner
		ymax := 0.0
		for _, p := range s.Points {
			ymax = math.Max(ymax, p.Y)
		}
		ystep := niceStep(ymax / 4)
		ymax = math.Max(ystep, math.Ceil(ymax/ystep)*ystep)
		x := func(v float64) float64 { return plotLeft + inner*v/xmax }
		y := func(v float64) float64 { return bottom - panelInner*v/ymax }
		fmt.Fprintf(&b, `<g class="panel" data-name="%s">`+"\n", html.EscapeString(s.Name))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-weight="bold">%s</text>`+"\n", plotLeft, top-6, html.EscapeString(s.Name))
		// Grid and y ticks.
		for v := 0.0; v <= ymax+ystep/2; v += ystep {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, plotLeft, y(v), plotLeft+inner, y(v))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", plotLeft-4, y(v)+4, tickLabel(v))
		}
		// x ticks.
		for v := 0.0; v <= xmax+xstep/2; v += xstep {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#999"/>`, x(v), bottom, x(v), bottom+4)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(v), bottom+15, tickLabel(v))
		}
		// Axes and their labels.
		fmt.Fprintf(&b, `<path d="M%d %.1f V%.1f H%.1f" fill="none" stroke="black"/>`+"\n", plotLeft, top, bottom, plotLeft+inner)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" class="xlabel">%s</text>`+"\n", plotLeft+inner/2, bottom+28, html.EscapeString(xLabel))
		cy := (top + bottom) / 2
		fmt.Fprintf(&b, `<text x="14" y="%.1f" text-anchor="middle" transform="rotate(-90 14 %.1f)" class="ylabel">%s</text>`+"\n", cy, cy, html.EscapeString(s.Unit))
		// The series.
		var pts []string
		for _, p := range s.Points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.X), y(p.Y)))
		}
		if len(pts) > 0 {
			fmt.Fprintf(&b, `<polyline class="series" fill="none" stroke="#1f5fa8" stroke-width="1.5" points="%s"/>`+"\n", strings.Join(pts, " "))
			for _, p := range s.Points {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="2" fill="#1f5fa8"/>`, x(p.X), y(p.Y))
			}
			b.WriteString("\n")
		}
		b.WriteString("</g>\n")
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceStep rounds a raw tick step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) || math.IsInf(raw, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// tickLabel prints a tick value without trailing zeros.
func tickLabel(v float64) string {
	return strconv.FormatFloat(math.Round(v*1000)/1000, 'f', -1, 64)
}
