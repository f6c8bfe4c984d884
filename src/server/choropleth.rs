//! Choropleth maps of Italy by region: each region's outline (from the openly licensed map in
//! `static/italy-regions.svg`, see its licence file) filled by its value on a sequential,
//! colour-blind-safe scale, with a legend. A withheld figure is hatched and called "dato
//! riservato", never drawn as zero; a region without a row is "nessun dato".
//!
//! Drawn as SVG text, not with plotters: the outlines are the map's own paths.

use std::sync::OnceLock;

use crate::reference;

/// The map: 20 paths, one per region, `id` in English.
const MAP: &str = include_str!("static/italy-regions.svg");
/// The map's own coordinate box.
const MAP_W: f64 = 610.0;
const MAP_H: f64 = 793.0;
/// Under every map: its source and licence, as CC BY 4.0 asks.
pub const ATTRIBUTION: &str =
    "Mappa delle regioni: @svg-maps/italy (Victor Cazanave, da MapSVG), licenza CC BY 4.0";

/// The map's ids and the ISTAT region codes of `reference/territories.csv`.
const REGION_IDS: [(&str, &str); 20] = [
    ("piedmont", "01"),
    ("aosta-valley", "02"),
    ("lombardy", "03"),
    ("trentino-south-tyrol", "04"),
    ("veneto", "05"),
    ("friuli-venezia-giulia", "06"),
    ("liguria", "07"),
    ("emilia-romagna", "08"),
    ("tuscany", "09"),
    ("umbria", "10"),
    ("marche", "11"),
    ("lazio", "12"),
    ("abruzzo", "13"),
    ("molise", "14"),
    ("campania", "15"),
    ("apulia", "16"),
    ("basilicata", "17"),
    ("calabria", "18"),
    ("sicily", "19"),
    ("sardinia", "20"),
];

/// ColorBrewer's YlGnBu in five classes, light to dark: sequential, and told apart by readers
/// with the common colour-vision deficiencies.
pub const SCALE: [&str; 5] = ["#FFFFCC", "#A1DAB4", "#41B6C4", "#2C7FB8", "#253494"];
const NO_DATA: &str = "#EEEEEE";

/// One region's figure on the map.
#[derive(Debug, Clone, PartialEq)]
pub enum Shade {
    Value(f64),
    /// Withheld below admin: hatched, "dato riservato".
    Withheld,
}

/// The map's regions: (ISTAT code, Italian name, path data), read once.
fn regions() -> &'static [(&'static str, &'static str, String)] {
    static R: OnceLock<Vec<(&'static str, &'static str, String)>> = OnceLock::new();
    R.get_or_init(|| {
        let mut out = Vec::new();
        for chunk in MAP.split("<path").skip(1) {
            // An attribute's value: the name must follow white space (`d=` is also the end
            // of `id=`).
            let attr = |name: &str| {
                let pat = format!("{name}=\"");
                let (at, _) = chunk.match_indices(&pat).find(|(i, _)| {
                    chunk[..*i]
                        .chars()
                        .next_back()
                        .is_some_and(char::is_whitespace)
                })?;
                let start = at + pat.len();
                let len = chunk[start..].find('"')?;
                Some(&chunk[start..start + len])
            };
            let (Some(id), Some(d)) = (attr("id"), attr("d")) else {
                continue;
            };
            let Some((_, code)) = REGION_IDS.iter().find(|(i, _)| *i == id) else {
                continue;
            };
            let name = reference::provinces()
                .iter()
                .find(|p| p.region_code == *code)
                .map_or("", |p| p.region_name);
            out.push((*code, name, d.to_owned()));
        }
        out
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The map of `values` (by region name), each class and withheld region in the legend.
/// `fmt` writes a value as the page's table does.
pub fn map(
    id: &str,
    title: &str,
    desc: &str,
    values: &[(String, Shade)],
    fmt: &dyn Fn(f64) -> String,
) -> String {
    let shown: Vec<f64> = values
        .iter()
        .filter_map(|(_, s)| match s {
            Shade::Value(v) if v.is_finite() => Some(*v),
            _ => None,
        })
        .collect();
    let (lo, hi) = shown
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(*v), b.max(*v))
        });
    let classes = SCALE.len();
    let class_of = |v: f64| -> usize {
        if hi <= lo {
            return classes / 2;
        }
        (((v - lo) / (hi - lo) * classes as f64).floor() as usize).min(classes - 1)
    };
    let mut body = String::new();
    for (_, name, d) in regions() {
        let figure = values
            .iter()
            .find(|(r, _)| r.eq_ignore_ascii_case(name))
            .map(|(_, s)| s);
        let (fill, said) = match figure {
            Some(Shade::Value(v)) if v.is_finite() => (SCALE[class_of(*v)].to_owned(), fmt(*v)),
            Some(_) => ("url(#riservato)".to_owned(), "dato riservato".to_owned()),
            None => (NO_DATA.to_owned(), "nessun dato".to_owned()),
        };
        body.push_str(&format!(
            "<path d=\"{d}\" fill=\"{fill}\" stroke=\"#555555\" stroke-width=\"0.8\"><title>{}: {}</title></path>",
            esc(name),
            esc(&said)
        ));
    }
    // The legend, in a band of its own under the map: one swatch per class with its range,
    // then the withheld and missing regions when there are any.
    let mut entries: Vec<(String, String)> = Vec::new();
    if !shown.is_empty() {
        if hi <= lo {
            entries.push((SCALE[classes / 2].to_owned(), fmt(lo)));
        } else {
            let step = (hi - lo) / classes as f64;
            for (i, colour) in SCALE.iter().enumerate() {
                let (a, b) = (lo + step * i as f64, lo + step * (i + 1) as f64);
                entries.push(((*colour).to_owned(), format!("{} – {}", fmt(a), fmt(b))));
            }
        }
    }
    if values.iter().any(|(_, s)| *s == Shade::Withheld) {
        entries.push(("url(#riservato)".into(), "dato riservato".into()));
    }
    if regions()
        .iter()
        .any(|(_, name, _)| !values.iter().any(|(r, _)| r.eq_ignore_ascii_case(name)))
    {
        entries.push((NO_DATA.into(), "nessun dato".into()));
    }
    let row_h = 30.0;
    let per_row = 2;
    let rows = entries.len().div_ceil(per_row);
    let legend_h = rows as f64 * row_h + 44.0;
    let mut legend = String::from("<g class=\"legend\">");
    for (i, (fill, label)) in entries.iter().enumerate() {
        let x = 10.0 + (i % per_row) as f64 * (MAP_W / per_row as f64);
        let y = MAP_H + 12.0 + (i / per_row) as f64 * row_h;
        legend.push_str(&format!(
            "<rect x=\"{x}\" y=\"{y}\" width=\"22\" height=\"18\" fill=\"{fill}\" stroke=\"#555555\"/><text x=\"{}\" y=\"{}\" font-family=\"sans-serif\" font-size=\"17\">{}</text>",
            x + 30.0,
            y + 14.0,
            esc(label)
        ));
    }
    legend.push_str(&format!(
        "<text x=\"10\" y=\"{}\" font-family=\"sans-serif\" font-size=\"15\" fill=\"#333333\">{}</text></g>",
        MAP_H + 12.0 + rows as f64 * row_h + 20.0,
        esc(ATTRIBUTION)
    ));
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {MAP_W} {}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" class=\"chart map\"><title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc><defs><pattern id=\"riservato\" width=\"8\" height=\"8\" patternUnits=\"userSpaceOnUse\" patternTransform=\"rotate(45)\"><rect width=\"8\" height=\"8\" fill=\"#FFFFFF\"/><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"8\" stroke=\"#777777\" stroke-width=\"3\"/></pattern></defs>{body}{legend}</svg>\n",
        MAP_H + legend_h,
        esc(title),
        esc(desc)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_map_has_every_region_of_the_reference() {
        let r = regions();
        assert_eq!(r.len(), 20);
        assert!(
            r.iter()
                .all(|(_, name, d)| !name.is_empty() && d.len() > 100)
        );
    }

    /// A withheld region is hatched and said to be withheld, never filled as a low value; a
    /// region without a row says so.
    #[test]
    fn withheld_regions_are_hatched_not_zero() {
        let values = vec![
            ("Lombardia".to_owned(), Shade::Value(10.0)),
            ("Lazio".to_owned(), Shade::Value(20.0)),
            ("Molise".to_owned(), Shade::Withheld),
        ];
        let svg = map("m1", "Titolo", "Descrizione", &values, &|v| format!("{v}"));
        assert!(
            svg.contains("<title>Molise: dato riservato</title>"),
            "{svg}"
        );
        assert!(svg.contains("<title>Lombardia: 10</title>"));
        assert!(svg.contains("<title>Umbria: nessun dato</title>"));
        // The lowest value takes the first class, the highest the last.
        let fill_of = |region: &str| {
            let at = svg.find(&format!("<title>{region}:")).unwrap();
            let path = &svg[svg[..at].rfind("<path").unwrap()..at];
            path.split("fill=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(fill_of("Lombardia"), SCALE[0]);
        assert_eq!(fill_of("Lazio"), SCALE[4]);
        assert_eq!(fill_of("Molise"), "url(#riservato)");
        assert!(svg.contains("dato riservato</text>") && svg.contains("CC BY 4.0"));
        assert!(svg.contains("class=\"legend\""));
    }
}
