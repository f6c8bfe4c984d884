//! Where the synthetic persons live: resident population per province, the CPIs of each
//! province, and deterministic apportionment of persons and offices over them.

/// Resident population in thousands (ISTAT, 1 January 2023, rounded), by province sigla.
/// Kept in the ISTAT order of `reference::provinces()` so a reader can check it against the
/// territories table line by line.
const POPULATION: [(&str, u32); 107] = [
    // Piemonte
    ("TO", 2208),
    ("VC", 166),
    ("NO", 362),
    ("CN", 582),
    ("AT", 207),
    ("AL", 409),
    ("BI", 171),
    ("VB", 155),
    // Valle d'Aosta
    ("AO", 123),
    // Lombardia
    ("VA", 880),
    ("CO", 596),
    ("SO", 180),
    ("MI", 3215),
    ("BG", 1103),
    ("BS", 1254),
    ("PV", 533),
    ("CR", 351),
    ("MN", 404),
    ("LC", 333),
    ("LO", 227),
    ("MB", 871),
    // Trentino-Alto Adige
    ("BZ", 535),
    ("TN", 542),
    // Veneto
    ("VR", 922),
    ("VI", 853),
    ("BL", 198),
    ("TV", 876),
    ("VE", 836),
    ("PD", 933),
    ("RO", 229),
    // Friuli-Venezia Giulia
    ("UD", 518),
    ("GO", 138),
    ("TS", 229),
    ("PN", 311),
    // Liguria
    ("IM", 211),
    ("SV", 267),
    ("GE", 819),
    ("SP", 214),
    // Emilia-Romagna
    ("PC", 284),
    ("PR", 453),
    ("RE", 525),
    ("MO", 705),
    ("BO", 1011),
    ("FE", 340),
    ("RA", 386),
    ("FC", 393),
    ("RN", 339),
    // Toscana
    ("MS", 189),
    ("LU", 383),
    ("PT", 290),
    ("FI", 985),
    ("LI", 329),
    ("PI", 417),
    ("AR", 334),
    ("SI", 263),
    ("GR", 216),
    ("PO", 258),
    // Umbria
    ("PG", 637),
    ("TR", 217),
    // Marche
    ("PU", 352),
    ("AN", 463),
    ("MC", 303),
    ("AP", 201),
    ("FM", 166),
    // Lazio
    ("VT", 308),
    ("RI", 150),
    ("RM", 4223),
    ("LT", 567),
    ("FR", 465),
    // Abruzzo
    ("AQ", 290),
    ("TE", 300),
    ("PE", 313),
    ("CH", 371),
    // Molise
    ("CB", 212),
    ("IS", 81),
    // Campania
    ("CE", 907),
    ("BN", 264),
    ("NA", 2971),
    ("AV", 398),
    ("SA", 1060),
    // Puglia
    ("FG", 599),
    ("BA", 1223),
    ("TA", 562),
    ("BR", 379),
    ("LE", 772),
    ("BT", 380),
    // Basilicata
    ("PZ", 349),
    ("MT", 192),
    // Calabria
    ("CS", 670),
    ("CZ", 341),
    ("RC", 522),
    ("KR", 163),
    ("VV", 152),
    // Sicilia
    ("TP", 411),
    ("PA", 1209),
    ("ME", 600),
    ("AG", 413),
    ("CL", 250),
    ("EN", 156),
    ("CT", 1072),
    ("RG", 315),
    ("SR", 384),
    // Sardegna
    ("SS", 476),
    ("NU", 199),
    ("CA", 420),
    ("OR", 150),
    ("SU", 335),
];

/// Italy's CPIs in all (DESIGN.md, "Scale to plan for").
pub(super) const TOTAL_CPIS: u32 = 552;

/// Approximate resident population (thousands, ISTAT ~2023) of a province; 0 for an unknown
/// sigla, so a caller can weight without a lookup failure path.
pub fn province_population(sigla: &str) -> u32 {
    POPULATION
        .iter()
        .find(|(s, _)| *s == sigla)
        .map_or(0, |&(_, p)| p)
}

/// Splits `total` over `weights` by largest remainder. The parts always sum to `total` and
/// ties go to the lower index, so the split never depends on anything but its inputs.
pub(super) fn apportion(total: u64, weights: &[u64]) -> Vec<u64> {
    let sum: u128 = weights.iter().map(|&w| u128::from(w)).sum();
    if sum == 0 || weights.is_empty() {
        let mut out = vec![0; weights.len()];
        if let Some(first) = out.first_mut() {
            *first = total;
        }
        return out;
    }
    let mut parts = Vec::with_capacity(weights.len());
    let mut rems = Vec::with_capacity(weights.len());
    let mut given = 0u64;
    for (i, &w) in weights.iter().enumerate() {
        let q = u128::from(total) * u128::from(w);
        let base = (q / sum) as u64;
        parts.push(base);
        rems.push((q % sum, i));
        given += base;
    }
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in rems.iter().take((total - given) as usize) {
        parts[i] += 1;
    }
    parts
}

/// CPIs per province: one each, then the rest by D'Hondt on population, so a large province
/// gets offices in proportion while the smallest still has its own.
pub(super) fn cpis_per_province(pops: &[u64]) -> Vec<u32> {
    let mut seats = vec![1u32; pops.len()];
    let extra = TOTAL_CPIS.saturating_sub(pops.len() as u32);
    for _ in 0..extra {
        let mut best = 0usize;
        for i in 1..pops.len() {
            // pops[i] / (seats[i] + 1) > pops[best] / (seats[best] + 1), without division.
            let lhs = u128::from(pops[i]) * u128::from(seats[best] + 1);
            let rhs = u128::from(pops[best]) * u128::from(seats[i] + 1);
            if lhs > rhs {
                best = i;
            }
        }
        if let Some(s) = seats.get_mut(best) {
            *s += 1;
        }
    }
    seats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference;

    #[test]
    fn table_follows_territories() {
        let siglas: Vec<&str> = reference::provinces().iter().map(|p| p.sigla).collect();
        let table: Vec<&str> = POPULATION.iter().map(|(s, _)| *s).collect();
        assert_eq!(siglas, table);
        let total: u32 = POPULATION.iter().map(|(_, p)| p).sum();
        assert!((58_000..61_000).contains(&total), "{total}");
    }

    #[test]
    fn apportion_sums_exactly() {
        let w = [5, 3, 2, 0, 7];
        for total in [0, 1, 2, 17, 1000, 123_457] {
            let parts = apportion(total, &w);
            assert_eq!(parts.iter().sum::<u64>(), total);
            assert_eq!(parts[3], 0);
        }
    }

    #[test]
    fn cpis_total_552() {
        let pops: Vec<u64> = POPULATION.iter().map(|&(_, p)| u64::from(p)).collect();
        let cpis = cpis_per_province(&pops);
        assert_eq!(cpis.iter().sum::<u32>(), TOTAL_CPIS);
        assert!(cpis.iter().all(|&c| (1..=99).contains(&c)));
        let rm = POPULATION.iter().position(|(s, _)| *s == "RM").unwrap();
        let is = POPULATION.iter().position(|(s, _)| *s == "IS").unwrap();
        assert!(cpis[rm] > 20 && cpis[is] <= 2);
    }
}
