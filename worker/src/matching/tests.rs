//! §8.1 of `matching-index-files.md`, row by row (M1–M90). Rows M59/M60 (effective content:
//! the SQL of `shared::db::retag::docs_in_range`) are not tested yet; M91–M94 are in `assign` and
//! `tests/tests/matching.rs`.

use super::*;

const ANY: i64 = alg::ANY;
const ALL: i64 = alg::ALL;
const LIT: i64 = alg::LITERAL;
const RE: i64 = alg::REGEX;
const FUZ: i64 = alg::FUZZY;
const NONE: i64 = alg::NONE;
const AUTO: i64 = alg::AUTO;

fn rule(algorithm: i64, insensitive: bool, pattern: &str) -> Rule {
    Rule::new(
        ObjectKind::Tag,
        1,
        "t",
        None,
        pattern,
        algorithm,
        insensitive,
    )
}

/// Every content must give `expected`, for a case-insensitive (`ci`) or sensitive rule.
fn check(row: &str, algorithm: i64, ci: bool, pattern: &str, contents: &[&str], expected: bool) {
    let r = rule(algorithm, ci, pattern);
    for c in contents {
        assert_eq!(
            r.matches(c),
            expected,
            "{row}: alg {algorithm} ci={ci} match {pattern:?} on {c:?}"
        );
    }
}

const T: bool = true;
const F: bool = false;

#[test]
fn m01_m15_all_insensitive() {
    let p = "alpha charlie gamma";
    check(
        "M1",
        ALL,
        T,
        p,
        &["I have alpha, charlie, and gamma in me"],
        T,
    );
    check(
        "M2",
        ALL,
        T,
        p,
        &[
            "I have alpha in me",
            "I have charlie in me",
            "I have gamma in me",
        ],
        F,
    );
    check("M3", ALL, T, p, &["I have alpha and charlie in me"], F);
    check(
        "M4",
        ALL,
        T,
        p,
        &["I have alphas, charlie, and gamma in me"],
        F,
    );
    check(
        "M5",
        ALL,
        T,
        p,
        &["I have alphas in me", "I have bravo in me"],
        F,
    );
    let n = "12 34 56";
    check("M6", ALL, T, n, &["I have 12 34, and 56 in me"], T);
    check(
        "M7",
        ALL,
        T,
        n,
        &[
            "I have 12 in me",
            "I have 34 in me",
            "I have 56 in me",
            "I have 12 and 34 in me",
        ],
        F,
    );
    check("M8", ALL, T, n, &["I have 120, 34, and 56 in me"], F);
    check(
        "M9",
        ALL,
        T,
        n,
        &["I have 123456 in me", "I have 01234567 in me"],
        F,
    );
    let q = r#"brown fox "lazy dogs""#;
    check(
        "M10",
        ALL,
        T,
        q,
        &["the quick brown fox jumped over the lazy dogs"],
        T,
    );
    check(
        "M11",
        ALL,
        T,
        q,
        &["the quick brown fox jumped over the lazy  dogs"],
        T,
    );
    check(
        "M12",
        ALL,
        T,
        q,
        &["the quick fox jumped over the lazy dogs"],
        F,
    );
    check(
        "M13",
        ALL,
        T,
        q,
        &["the quick brown wolf jumped over the lazy dogs"],
        F,
    );
    check(
        "M14",
        ALL,
        T,
        q,
        &["the quick brown fox jumped over the fat dogs"],
        F,
    );
    check(
        "M15",
        ALL,
        T,
        q,
        &["the quick brown fox jumped over the lazy... dogs"],
        F,
    );
}

#[test]
fn m16_m24_any_insensitive() {
    let p = "alpha charlie gamma";
    check(
        "M16",
        ANY,
        T,
        p,
        &[
            "I have alpha in me",
            "I have charlie in me",
            "I have gamma in me",
        ],
        T,
    );
    check(
        "M17",
        ANY,
        T,
        p,
        &[
            "I have alpha, charlie, and gamma in me",
            "I have alpha and charlie in me",
        ],
        T,
    );
    check(
        "M18",
        ANY,
        T,
        p,
        &["I have alphas in me", "I have bravo in me"],
        F,
    );
    let n = "12 34 56";
    check(
        "M19",
        ANY,
        T,
        n,
        &[
            "I have 12 in me",
            "I have 34 in me",
            "I have 56 in me",
            "I have 12 and 34 in me",
            "I have 12, 34, and 56 in me",
        ],
        T,
    );
    check("M20", ANY, T, n, &["I have 120, 34, and 56 in me"], T);
    check(
        "M21",
        ANY,
        T,
        n,
        &["I have 123456 in me", "I have 01234567 in me"],
        F,
    );
    let q = r#""brown fox" " lazy  dogs ""#;
    check("M22", ANY, T, q, &["the quick brown fox"], T);
    check("M23", ANY, T, q, &["jumped over the lazy  dogs."], T);
    check(
        "M24",
        ANY,
        T,
        q,
        &["the lazy fox jumped over the brown dogs"],
        F,
    );
}

#[test]
fn m25_m28_literal_insensitive() {
    let p = "alpha charlie gamma";
    check("M25", LIT, T, p, &["I have 'alpha charlie gamma' in me"], T);
    check(
        "M26",
        LIT,
        T,
        p,
        &[
            "I have alpha, charlie, and gamma in me",
            "I have alpha in me",
            "I have charlie in me",
            "I have gamma in me",
            "I have alpha and charlie in me",
            "I have alphas, charlie, and gamma in me",
            "I have bravo in me",
        ],
        F,
    );
    let n = "12 34 56";
    check("M27", LIT, T, n, &["I have 12 34 56 in me"], T);
    check(
        "M28",
        LIT,
        T,
        n,
        &[
            "I have 12 34, and 56 in me",
            "I have 120, 34, and 560 in me",
            "I have 120, 340, and 560 in me",
            "I have 123456 in me",
        ],
        F,
    );
}

#[test]
fn m29_m32_regex_insensitive() {
    let p = r"alpha\w+gamma";
    check(
        "M29",
        RE,
        T,
        p,
        &[
            "I have alpha_and_gamma in me",
            "I have alphas_and_gamma in me",
        ],
        T,
    );
    check(
        "M30",
        RE,
        T,
        p,
        &[
            "I have alpha and gamma in me",
            "I have alpha,and,gamma in me",
            "I have alpha, charlie, and gamma in me",
            "I have alpha in me",
        ],
        F,
    );
    check("M31", RE, T, "[", &["Don't match this"], F);
    let runaway = format!("{}X", "a".repeat(5000));
    let started = std::time::Instant::now();
    check("M32", RE, T, "(a+)+$", &[&runaway], F);
    // A backtracking form the delegate engine cannot take: bounded by BACKTRACK_LIMIT.
    check("M32b", RE, T, r"(a+)+\1$", &[&runaway], F);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "runaway patterns are bounded: {:?}",
        started.elapsed()
    );
}

#[test]
fn m33_m38_fuzzy_and_none() {
    let p = "Springfield, Miss.";
    check(
        "M33",
        FUZ,
        T,
        p,
        &["1220 Main Street, Springf eld, Miss."],
        T,
    );
    check(
        "M34",
        FUZ,
        T,
        p,
        &["1220 Main Street, Spring field, Miss."],
        T,
    );
    check(
        "M35",
        FUZ,
        T,
        p,
        &["1220 Main Street, Springfeld, Miss."],
        T,
    );
    check("M36", FUZ, T, p, &["1220 Main Street Springfield Miss"], T);
    check(
        "M37",
        FUZ,
        T,
        p,
        &["1220 Main Street, Springfield, Mich."],
        F,
    );
    check("M38", NONE, T, "", &["no", "match"], F);
}

#[test]
fn m39_m44_all_sensitive() {
    let p = "alpha charlie gamma";
    check(
        "M39",
        ALL,
        F,
        p,
        &[
            "I have alpha, charlie, and gamma in me",
            "I have gamma, charlie, and alpha in me",
        ],
        T,
    );
    check(
        "M40",
        ALL,
        F,
        p,
        &[
            "I have Alpha, charlie, and gamma in me",
            "I have gamma, Charlie, and alpha in me",
            "I have alpha, charlie, and Gamma in me",
            "I have gamma, charlie, and ALPHA in me",
        ],
        F,
    );
    let c = "Alpha charlie Gamma";
    check(
        "M41",
        ALL,
        F,
        c,
        &[
            "I have Alpha, charlie, and Gamma in me",
            "I have Gamma, charlie, and Alpha in me",
        ],
        T,
    );
    check(
        "M42",
        ALL,
        F,
        c,
        &[
            "I have Alpha, charlie, and gamma in me",
            "I have gamma, charlie, and alpha in me",
            "I have alpha, charlie, and Gamma in me",
            "I have Gamma, Charlie, and ALPHA in me",
        ],
        F,
    );
    let q = r#"brown fox "lazy dogs""#;
    check(
        "M43",
        ALL,
        F,
        q,
        &[
            "the quick brown fox jumped over the lazy dogs",
            "the quick brown fox jumped over the lazy  dogs",
        ],
        T,
    );
    check(
        "M44",
        ALL,
        F,
        q,
        &[
            "the quick Brown fox jumped over the lazy dogs",
            "the quick brown Fox jumped over the lazy  dogs",
            "the quick brown fox jumped over the Lazy dogs",
            "the quick brown fox jumped over the lazy  Dogs",
        ],
        F,
    );
}

#[test]
fn m45_m50_any_sensitive() {
    let p = "alpha charlie gamma";
    check(
        "M45",
        ANY,
        F,
        p,
        &[
            "I have alpha in me",
            "I have charlie in me",
            "I have gamma in me",
            "I have alpha, charlie, and gamma in me",
            "I have alpha and charlie in me",
        ],
        T,
    );
    check(
        "M46",
        ANY,
        F,
        p,
        &[
            "I have Alpha in me",
            "I have chaRLie in me",
            "I have gamMA in me",
            "I have aLPha, cHArlie, and gAMma in me",
            "I have AlphA and CharlIe in me",
        ],
        F,
    );
    let c = "Alpha Charlie Gamma";
    check(
        "M47",
        ANY,
        F,
        c,
        &[
            "I have Alpha in me",
            "I have Charlie in me",
            "I have Gamma in me",
            "I have Alpha, Charlie, and Gamma in me",
            "I have Alpha and Charlie in me",
        ],
        T,
    );
    check(
        "M48",
        ANY,
        F,
        c,
        &[
            "I have alpha in me",
            "I have ChaRLie in me",
            "I have GamMA in me",
            "I have ALPha, CHArlie, and GAMma in me",
            "I have AlphA and CharlIe in me",
        ],
        F,
    );
    let q = r#""brown fox" " lazy  dogs ""#;
    check(
        "M49",
        ANY,
        F,
        q,
        &["the quick brown fox", "jumped over the lazy  dogs."],
        T,
    );
    check(
        "M50",
        ANY,
        F,
        q,
        &["the quick Brown fox", "jumped over the lazy  Dogs."],
        F,
    );
}

#[test]
fn m51_m58_literal_and_regex_sensitive() {
    let p = "alpha charlie gamma";
    check("M51", LIT, F, p, &["I have 'alpha charlie gamma' in me"], T);
    check(
        "M52",
        LIT,
        F,
        p,
        &[
            "I have 'Alpha charlie gamma' in me",
            "I have 'alpha Charlie gamma' in me",
            "I have 'alpha charlie Gamma' in me",
            "I have 'Alpha Charlie Gamma' in me",
        ],
        F,
    );
    let c = "Alpha Charlie Gamma";
    check("M53", LIT, F, c, &["I have 'Alpha Charlie Gamma' in me"], T);
    check(
        "M54",
        LIT,
        F,
        c,
        &[
            "I have 'Alpha charlie gamma' in me",
            "I have 'alpha Charlie gamma' in me",
            "I have 'alpha charlie Gamma' in me",
            "I have 'alpha charlie gamma' in me",
        ],
        F,
    );
    let r = r"alpha\w+gamma";
    check(
        "M55",
        RE,
        F,
        r,
        &[
            "I have alpha_and_gamma in me",
            "I have alphas_and_gamma in me",
        ],
        T,
    );
    check(
        "M56",
        RE,
        F,
        r,
        &[
            "I have Alpha_and_Gamma in me",
            "I have alpHAs_and_gaMMa in me",
        ],
        F,
    );
    let r2 = r"Alpha\w+gamma";
    check(
        "M57",
        RE,
        F,
        r2,
        &[
            "I have Alpha_and_gamma in me",
            "I have Alphas_and_gamma in me",
        ],
        T,
    );
    check(
        "M58",
        RE,
        F,
        r2,
        &[
            "I have Alpha_and_Gamma in me",
            "I have alphas_and_gamma in me",
        ],
        F,
    );
}

#[test]
fn m61_m70_derived_word_boundaries_and_escapes() {
    check("M61", ANY, T, "C++", &["I love C++ code"], F);
    check("M61", LIT, T, "C++", &["I love C++ code"], F);
    check("M62", ANY, T, "a.b", &["a.b"], T);
    check("M62", ANY, T, "a.b", &["axb"], F);
    check("M63", ANY, T, "$100", &["costs $100 today"], F);
    check("M64", LIT, T, "bc hydro", &["BC Hydro bill"], T);
    check(
        "M64",
        LIT,
        T,
        "bc hydro",
        &["BC  Hydro bill", "BC\nHydro"],
        F,
    );
    check(
        "M65",
        ANY,
        T,
        r#""bc hydro""#,
        &["BC  Hydro bill", "BC\nHydro bill"],
        T,
    );
    for alg in [ALL, ANY] {
        for blank in ["   ", ""] {
            check("M66", alg, T, blank, &["anything", "", "   "], F);
        }
    }
    check("M67", RE, T, "^first", &["first doc"], T);
    check("M67", RE, T, "^doc", &["first\ndoc"], F);
    check("M67", RE, T, "(?m)^doc", &["first\ndoc"], T);
    check("M68", ANY, T, "straße", &["STRASSE"], F);
    check("M68", ANY, T, "café", &["CAFÉ"], T);
    check("M68", ANY, T, "é", &["café"], F);
    check("M69", ALL, T, "inv-2023", &["Ref inv-2023 ok"], T);
    check("M69", ALL, T, "inv-2023", &["Ref inv-20234 ok"], F);
    check("M70", LIT, T, "12.50", &["total 12.50 EUR"], T);
    check("M70", LIT, T, "12.50", &["total 112.50 EUR"], F);
}

#[test]
fn m71_m75_derived_fuzzy() {
    check("M71", FUZ, T, "Amazon", &["AMAZON"], T);
    check("M71", FUZ, F, "Amazon", &["AMAZON"], F);
    check("M72", FUZ, T, "abc", &[""], F);
    check("M72", FUZ, T, "!!!", &[""], T);
    check("M72", FUZ, T, "!!!", &["some text"], F);
    check("M73", FUZ, T, "telekom", &["Deutsche Telekom AG"], T);
    check(
        "M73",
        FUZ,
        T,
        "telekom",
        &["Deutsche Telecom AG", "Deutsche Telkom AG"],
        F,
    );
    check("M74", FUZ, T, "Müller GmbH", &["mueller gmbh"], T);
    check(
        "M75",
        FUZ,
        T,
        "Springfield Mississippi",
        &["Springfield"],
        T,
    );
}

#[test]
fn m76_m90_derived_quirks() {
    check("M76", ANY, T, r#"" ""#, &["hello"], T);
    check("M76", ANY, T, r#"" ""#, &["!!!"], F);
    check("M77", LIT, T, " foo", &["a foo"], T);
    check("M77", LIT, T, " foo", &[" foo"], F);
    check("M78", ANY, T, "foo", &["foo_bar", "foo2"], F);
    check("M78", ANY, T, "foo", &["foo-bar"], T);
    check("M79", ANY, T, "2023", &["FY2023"], F);
    check("M79", ANY, T, "2023", &["2023-01-05"], T);
    check("M80", ALL, T, r#""lazy dogs""#, &["lazy\tdogs"], T);
    check("M80", ALL, T, r#""lazy dogs""#, &["lazydogs"], F);
    check(
        "M81",
        LIT,
        T,
        "Acme Inc.",
        &["Invoice from Acme Inc. today"],
        F,
    );
    check(
        "M81",
        LIT,
        T,
        "Acme Inc",
        &["Invoice from Acme Inc. today"],
        T,
    );
    check("M82", ANY, T, "(GmbH)", &["Firma (GmbH) x"], F);
    check("M82", ANY, T, "GmbH", &["Firma (GmbH) x"], T);
    check("M83", ALL, T, "alpha alpha", &["alpha"], T);
    check("M84", ANY, T, "über", &["Über uns"], T);
    check("M84", ANY, F, "über", &["Über uns"], F);
    // A blank match never matches, even a regex that would match the empty document.
    check("M85", RE, T, "^$", &[""], T);
    check("M85", RE, T, "", &["x", ""], F);
    check("M86", ANY, T, "invoice", &["in\nvoice"], F);
    check("M87", ALL, T, "a b", &["b a"], T);
    check("M87", ANY, T, r#""a b""#, &["b a"], F);
    check("M88", RE, F, r"\bINV\d+", &["inv123"], F);
    check("M88", RE, T, r"\bINV\d+", &["inv123"], T);
    check("M89", NONE, T, "x", &["x"], F);
    check("M89", AUTO, T, "x", &["x"], F);
    // Decision: look-behind works (fancy-regex), as upstream's `regex` module.
    check("M90", RE, T, r"(?<=Nr\. )\d+", &["Nr. 55"], T);
}

#[test]
fn regex_helpers() {
    assert_eq!(shorten(&"x".repeat(80)).len(), 80);
    assert!(shorten(&"x".repeat(200)).ends_with("..."));
    // Back-references (Python `regex` syntax) work too.
    check("backref", RE, T, r"(\w+) \1", &["the the end"], T);
}
