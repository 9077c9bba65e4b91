package main

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// The figure is widthPx × heightPx at dpi.
const (
	widthPx, heightPx = 1400, 820
	dpi               = 96
)

var (
	colVM       = color.RGBA{R: 0x1f, G: 0x5f, B: 0xb4, A: 0xff}
	colRef      = color.RGBA{A: 0xff}
	colSource   = color.RGBA{R: 0x88, G: 0x88, B: 0x88, A: 0xff}
	colEnvelope = color.RGBA{R: 0xe0, G: 0x8a, B: 0x1e, A: 0xff}
	colFill     = color.NRGBA{R: 0xe0, G: 0x8a, B: 0x1e, A: 0x22}
	colFreeze   = color.RGBA{R: 0xc6, G: 0x28, B: 0x28, A: 0xff}
	colResume   = color.RGBA{R: 0x2e, G: 0x8b, B: 0x3e, A: 0xff}
	dashed      = []vg.Length{vg.Points(6), vg.Points(4)}
	dotted      = []vg.Length{vg.Points(2), vg.Points(3)}
)

// render writes m's figure as a PNG to path.
func render(m *migration, path string) error {
	offsetPanel, err := offsetPlot(m)
	if err != nil {
		return err
	}
	ratePanel, err := ratePlot(m)
	if err != nil {
		return err
	}
	zoomPanel, err := zoomPlot(m)
	if err != nil {
		return err
	}
	w, h := vg.Length(widthPx)*vg.Inch/dpi, vg.Length(heightPx)*vg.Inch/dpi
	img := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(dpi))
	dc := draw.New(img)
	body := drawTitle(dc, m)
	split := body.Min.X + (body.Max.X-body.Min.X)*0.66
	left := draw.Crop(body, 0, split-body.Max.X, 0, 0)
	right := draw.Crop(body, split-body.Min.X+vg.Points(14), 0, 0, 0)
	mid := left.Min.Y + (left.Max.Y-left.Min.Y)*0.38
	top := draw.Crop(left, 0, 0, mid-left.Min.Y+vg.Points(6), 0)
	bottom := draw.Crop(left, 0, 0, 0, mid-left.Max.Y-vg.Points(6))
	canvases := alignLeft([]*plot.Plot{offsetPanel, ratePanel}, []draw.Canvas{top, bottom})
	offsetPanel.Draw(canvases[0])
	ratePanel.Draw(canvases[1])
	zoomPanel.Draw(right)

	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	return nil
}

// drawTitle writes the figure's two title lines at the top of dc and
// returns the canvas left below them.
func drawTitle(dc draw.Canvas, m *migration) draw.Canvas {
	sc := m.sc
	where := "behind"
	if sc.offsetNs > 0 {
		where = "ahead of"
	}
	head := fmt.Sprintf("Live migration: the VM resumes %s %s the destination's reference",
		fmtMs(abs(sc.offsetNs)), where)
	sub := fmt.Sprintf("ρ_vm = %d ppm   ·   downtime %s   ·   the source's reference reads %s the destination's",
		sc.policy.MaxSlewPPM, fmtMs(sc.downtimeNs), skewWords(sc.skewNs()))
	x := (dc.Min.X + dc.Max.X) / 2
	y := dc.Max.Y - vg.Points(10)
	dc.FillText(textStyle(17, colRef, text.XCenter, text.YTop), vg.Point{X: x, Y: y}, head)
	dc.FillText(textStyle(12, color.Gray{Y: 0x40}, text.XCenter, text.YTop), vg.Point{X: x, Y: y - vg.Points(26)}, sub)
	return draw.Crop(dc, vg.Points(8), -vg.Points(14), vg.Points(6), -vg.Points(64))
}

// offsetPlot is the main panel: VM clock minus the reference it is
// served against, over the whole timeline, with the ±ρ_vm envelope.
func offsetPlot(m *migration) (*plot.Plot, error) {
	p := newPlot("VM clock − the reference of the host running it", "seconds since the freeze", "VM − reference (ms)")
	sc := m.sc
	first, end := -seconds(sc.beforeNs), seconds(m.samples[len(m.samples)-1].tNs)
	off := ms(sc.offsetNs)
	lo := math.Min(0, off) - 0.25*math.Abs(off) - ms(sc.downtimeNs)
	hi := math.Max(0, off) + 0.25*math.Abs(off)
	rho := float64(sc.policy.MaxSlewPPM) / 1e6
	// The envelope starts where the VM resumed: the floor, or above it
	// when MaxLagNs stepped the VM forward.
	start := ms(m.samples[m.firstOn(onDestination)].offsetNs())
	t0, span := seconds(m.resumeNs), end-seconds(m.resumeNs)
	upper := plotter.XYs{{X: t0, Y: start}, {X: end, Y: start + rho*span*1e3}}
	lower := plotter.XYs{{X: t0, Y: start}, {X: end, Y: start - rho*span*1e3}}
	wedge, err := plotter.NewPolygon(plotter.XYs{upper[0], upper[1], lower[1]})
	if err != nil {
		return nil, err
	}
	wedge.Color, wedge.LineStyle.Width = colFill, 0
	p.Add(wedge)
	for _, edge := range []plotter.XYs{upper, lower} {
		if err := addLine(p, "", edge, colEnvelope, 1.2, dashed); err != nil {
			return nil, err
		}
	}
	p.Legend.Add("allowed: ±ρ_vm", legendThumb(colEnvelope, dashed))
	if err := addLine(p, "reference", plotter.XYs{{X: first, Y: 0}, {X: end, Y: 0}}, colRef, 1.2, nil); err != nil {
		return nil, err
	}
	if err := markEvents(p, m, 1, lo, hi, true); err != nil {
		return nil, err
	}
	vm := make(plotter.XYs, len(m.samples))
	for i, s := range m.samples {
		vm[i] = plotter.XY{X: seconds(s.tNs), Y: ms(s.offsetNs())}
	}
	if err := addLine(p, "VM clock", vm, colVM, 2.6, nil); err != nil {
		return nil, err
	}
	conv, err := plotter.NewScatter(plotter.XYs{{X: seconds(m.convergedNs), Y: 0}})
	if err != nil {
		return nil, err
	}
	conv.GlyphStyle = draw.GlyphStyle{Color: colVM, Radius: vg.Points(4.5), Shape: draw.CircleGlyph{}}
	p.Add(conv)
	p.Legend.Add(fmt.Sprintf("converged, %.1f s after resume", seconds(m.convergedNs-m.resumeNs)), conv)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = first, end, lo, hi
	p.X.Tick.Marker = niceTicks(end-first, 12)
	p.Y.Tick.Marker = niceTicks(hi-lo, 7)
	p.Legend.Left, p.Legend.Top = true, sc.offsetNs > 0
	p.Legend.XOffs = vg.Points(8)
	if !p.Legend.Top {
		p.Legend.YOffs = vg.Points(8)
	}
	return p, nil
}

// ratePlot is the VM clock's rate relative to its reference, in ppm,
// from the difference of consecutive samples on one host; the pause has
// no rate and is left blank.
func ratePlot(m *migration) (*plot.Plot, error) {
	p := newPlot("", "seconds since the freeze", "VM rate vs reference (ppm)")
	sc := m.sc
	rho := float64(sc.policy.MaxSlewPPM)
	first, end := -seconds(sc.beforeNs), seconds(m.samples[len(m.samples)-1].tNs)
	for _, bound := range []float64{rho, -rho} {
		if err := addLine(p, "", plotter.XYs{{X: first, Y: bound}, {X: end, Y: bound}}, colEnvelope, 1.2, dashed); err != nil {
			return nil, err
		}
	}
	bounds, err := plotter.NewLabels(plotter.XYLabels{
		XYs:    plotter.XYs{{X: first, Y: rho}, {X: first, Y: -rho}},
		Labels: []string{"+ρ_vm: fastest allowed", "−ρ_vm: slowest allowed"},
	})
	if err != nil {
		return nil, err
	}
	bounds.TextStyle[0] = textStyle(11, colEnvelope, text.XLeft, text.YBottom)
	bounds.TextStyle[1] = textStyle(11, colEnvelope, text.XLeft, text.YTop)
	bounds.Offset = vg.Point{X: vg.Points(4), Y: vg.Points(2)}
	if err := addLine(p, "", plotter.XYs{{X: first, Y: 0}, {X: end, Y: 0}}, colRef, 1.2, nil); err != nil {
		return nil, err
	}
	if err := markEvents(p, m, 1, -1.5*rho, 1.5*rho, false); err != nil {
		return nil, err
	}
	for _, seg := range rateSegments(m) {
		if err := addLine(p, "", seg, colVM, 2.6, nil); err != nil {
			return nil, err
		}
	}
	p.Add(bounds)
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = first, end, -1.5*rho, 1.5*rho
	p.X.Tick.Marker = niceTicks(end-first, 12)
	p.Y.Tick.Marker = stepTicks{major: rho, minor: rho / 2}
	return p, nil
}

// minRateSpanNs is the shortest pair of samples a rate is taken over:
// the model rounds to 1 ns, an error of 1 ppm over 1 ms.
const minRateSpanNs = 10 * int64(time.Millisecond)

// rateSegments is the VM rate as steps, one polyline per stretch that
// the VM ran on one host.
func rateSegments(m *migration) []plotter.XYs {
	var out []plotter.XYs
	var cur plotter.XYs
	for i := 1; i < len(m.samples); i++ {
		a, b := m.samples[i-1], m.samples[i]
		if a.phase != b.phase || a.phase == frozen {
			if len(cur) > 0 {
				out, cur = append(out, cur), nil
			}
			continue
		}
		dRef := b.ownerRef.Time - a.ownerRef.Time
		if dRef < minRateSpanNs {
			continue
		}
		ppm := (float64(b.vm.Time-a.vm.Time)/float64(dRef) - 1) * 1e6
		cur = append(cur, plotter.XY{X: seconds(a.tNs), Y: ppm}, plotter.XY{X: seconds(b.tNs), Y: ppm})
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// zoomPlot shows the migration itself in absolute readings: both
// hosts' references and the VM clock, relative to the floor.
func zoomPlot(m *migration) (*plot.Plot, error) {
	p := newPlot("The migration up close", "milliseconds since the freeze", "reading − floor (ms)")
	sc := m.sc
	from, to := -150*int64(time.Millisecond), m.resumeNs+350*int64(time.Millisecond)
	var src, dst, vm plotter.XYs
	for _, s := range m.samples {
		if s.tNs < from || s.tNs > to {
			continue
		}
		x := ms(s.tNs)
		src = append(src, plotter.XY{X: x, Y: ms(s.srcNs - m.floorNs)})
		dst = append(dst, plotter.XY{X: x, Y: ms(s.dstNs - m.floorNs)})
		vm = append(vm, plotter.XY{X: x, Y: ms(s.vm.Time - m.floorNs)})
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, xy := range append(append(append(plotter.XYs{}, src...), dst...), vm...) {
		lo, hi = math.Min(lo, xy.Y), math.Max(hi, xy.Y)
	}
	// The event lines stop short of the top, which is left to the legend.
	lo, top, hi := lo-0.05*(hi-lo), hi+0.05*(hi-lo), hi+0.4*(hi-lo)
	if err := addLine(p, "source's reference", src, colSource, 1.6, dashed); err != nil {
		return nil, err
	}
	if err := addLine(p, "destination's reference", dst, colRef, 1.6, nil); err != nil {
		return nil, err
	}
	if err := markEvents(p, m, 1e3, lo, top, true); err != nil {
		return nil, err
	}
	gap := plotter.XYs{{X: ms(m.resumeNs), Y: 0}, {X: ms(m.resumeNs), Y: ms(m.dstEpochNs + m.resumeNs - m.floorNs)}}
	if err := addLine(p, "floor − reference at resume: "+signedMs(sc.offsetNs), gap, colEnvelope, 4, nil); err != nil {
		return nil, err
	}
	if err := addLine(p, "VM clock", vm, colVM, 2.6, nil); err != nil {
		return nil, err
	}
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = ms(from), ms(to), lo, hi
	p.X.Tick.Marker = niceTicks(ms(to-from), 6)
	p.Y.Tick.Marker = niceTicks(hi-lo, 10)
	p.Legend.Top, p.Legend.Left = true, true
	p.Legend.XOffs = vg.Points(8)
	return p, nil
}

// markEvents draws the freeze and resume as vertical lines from lo to
// hi, x in seconds times perSecond, named in the legend if named.
func markEvents(p *plot.Plot, m *migration, perSecond, lo, hi float64, named bool) error {
	for _, ev := range []struct {
		name string
		tNs  int64
		col  color.Color
	}{
		{"freeze", 0, colFreeze},
		{fmt.Sprintf("resume (+%s)", fmtMs(m.resumeNs)), m.resumeNs, colResume},
	} {
		x, name := seconds(ev.tNs)*perSecond, ""
		if named {
			name = ev.name
		}
		if err := addLine(p, name, plotter.XYs{{X: x, Y: lo}, {X: x, Y: hi}}, ev.col, 1.4, dotted); err != nil {
			return err
		}
	}
	return nil
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color, widthPt float64, dashes []vg.Length) error {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return err
	}
	l.LineStyle = draw.LineStyle{Color: c, Width: vg.Points(widthPt), Dashes: dashes}
	p.Add(l)
	if name != "" {
		p.Legend.Add(name, l)
	}
	return nil
}

func legendThumb(c color.Color, dashes []vg.Length) plot.Thumbnailer {
	return &plotter.Line{LineStyle: draw.LineStyle{Color: c, Width: vg.Points(1.2), Dashes: dashes}}
}

func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = title, xLabel, yLabel
	for _, st := range []struct {
		style  *text.Style
		sizePt float64
	}{
		{&p.Title.TextStyle, 14}, {&p.X.Label.TextStyle, 12}, {&p.Y.Label.TextStyle, 12},
		{&p.X.Tick.Label, 11}, {&p.Y.Tick.Label, 11}, {&p.Legend.TextStyle, 11},
	} {
		st.style.Font.Variant, st.style.Font.Size = "Sans", vg.Points(st.sizePt)
	}
	p.Title.Padding = vg.Points(8)
	p.X.Label.Padding, p.Y.Label.Padding = vg.Points(4), vg.Points(4)
	p.Legend.ThumbnailWidth = vg.Points(28)
	p.Legend.Padding = vg.Points(2)
	p.Legend.XOffs, p.Legend.YOffs = -vg.Points(8), -vg.Points(6)
	p.X.Padding, p.Y.Padding = 0, 0
	grid := plotter.NewGrid()
	grid.Vertical.Color, grid.Horizontal.Color = color.Gray{Y: 0xe6}, color.Gray{Y: 0xe6}
	p.Add(grid)
	return p
}

// stepTicks labels every major and marks every minor multiple.
type stepTicks struct{ major, minor float64 }

// niceTicks labels a span with at most n majors at 1, 2 or 5 times a
// power of ten, with a minor tick between each.
func niceTicks(span float64, n int) stepTicks {
	for p := math.Pow(10, math.Floor(math.Log10(span/float64(n)))); ; p *= 10 {
		for _, f := range []float64{1, 2, 5} {
			if span/(f*p) <= float64(n) {
				return stepTicks{major: f * p, minor: f * p / 2}
			}
		}
	}
}

func (st stepTicks) Ticks(lo, hi float64) []plot.Tick {
	var ts []plot.Tick
	for i := math.Ceil(lo / st.minor); i*st.minor <= hi; i++ {
		v, label := i*st.minor, ""
		if r := math.Remainder(v, st.major); math.Abs(r) < st.minor/1e6 {
			label = strings.Replace(strconv.FormatFloat(v, 'f', -1, 64), "-", "−", 1)
		}
		ts = append(ts, plot.Tick{Value: v, Label: label})
	}
	return ts
}

func textStyle(sizePt float64, c color.Color, x text.XAlignment, y text.YAlignment) text.Style {
	s := text.Style{Color: c, XAlign: x, YAlign: y, Handler: plot.DefaultTextHandler}
	s.Font = plot.DefaultFont
	s.Font.Variant, s.Font.Size = "Sans", vg.Points(sizePt)
	return s
}

// alignLeft narrows each canvas so that the plots' data areas share
// their left and right edges.
func alignLeft(ps []*plot.Plot, cs []draw.Canvas) []draw.Canvas {
	var left, right vg.Length
	for i, p := range ps {
		d := p.DataCanvas(cs[i])
		left, right = max(left, d.Min.X-cs[i].Min.X), max(right, cs[i].Max.X-d.Max.X)
	}
	out := make([]draw.Canvas, len(cs))
	for i, p := range ps {
		d := p.DataCanvas(cs[i])
		out[i] = draw.Crop(cs[i], left-(d.Min.X-cs[i].Min.X), -(right - (cs[i].Max.X - d.Max.X)), 0, 0)
	}
	return out
}

func skewWords(skewNs int64) string {
	switch {
	case skewNs < 0:
		return fmtMs(-skewNs) + " behind"
	case skewNs > 0:
		return fmtMs(skewNs) + " ahead of"
	}
	return "the same as"
}

func fmtMs(ns int64) string { return fmt.Sprintf("%g ms", ms(ns)) }

// signedMs writes ns in milliseconds with a typographic sign.
func signedMs(ns int64) string {
	if ns < 0 {
		return "−" + fmtMs(-ns)
	}
	return "+" + fmtMs(ns)
}

func ms(ns int64) float64      { return float64(ns) / 1e6 }
func seconds(ns int64) float64 { return float64(ns) / 1e9 }

func abs(x int64) int64 {
	if x < 0 {
		return -x
	}
	return x
}
