//! Table-driven tests of the transform engine: parsing and canonical forms, error messages,
//! input checks, inverses, and every step's edge cases.

use super::*;

/// What applying a pipeline should give.
#[derive(Debug)]
enum Want {
    /// This output.
    Out(&'static str),
    /// No value.
    Missing,
    /// A value error whose message contains this.
    Fails(&'static str),
}
use Want::{Fails, Missing, Out};

fn us() -> Context {
    Context {
        default_region: Some("US".to_owned()),
    }
}

fn check(expr: &str, inputs: &[Option<&str>], ctx: &Context, want: &Want) {
    let pipeline = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
    let got = pipeline.apply(inputs, ctx);
    let ok = match (&got, want) {
        (Ok(Some(out)), Out(expected)) => out == expected,
        (Ok(None), Missing) => true,
        (Err(e), Fails(part)) => e.to_string().contains(part),
        _ => false,
    };
    assert!(ok, "{expr} on {inputs:?}: got {got:?}, want {want:?}");
}

/// Runs single-input cases of one expression in the US context.
fn table(expr: &str, cases: &[(&str, Want)]) {
    for (input, want) in cases {
        check(expr, &[Some(input)], &us(), want);
    }
}

#[test]
fn canonical_forms() {
    let cases = [
        ("", ""),
        ("   \t", ""),
        ("trim", "trim"),
        ("  trim |\tlowercase  ", "trim|lowercase"),
        ("trim()", "trim"),
        ("phone_e164", "phone_e164"),
        ("phone_e164()", "phone_e164"),
        ("phone_e164(region=us)", "phone_e164(region=US)"),
        ("phone_e164( region = \"GB\" )", "phone_e164(region=GB)"),
        ("date_iso", "date_iso"),
        (
            "date_iso(output=datetime, order=DMY)",
            "date_iso(order=dmy, output=datetime)",
        ),
        ("date_iso(output=date)", "date_iso(output=date)"),
        ("date_iso(order=mdy)", "date_iso(order=mdy)"),
        ("split_name(part=first)", "split_name(part=first)"),
        ("split_name( part = \"Last\" )", "split_name(part=last)"),
        ("concatenate", "concatenate"),
        ("concatenate(sep=\" \")", "concatenate"),
        ("concatenate(sep=\", \")", "concatenate(sep=\", \")"),
        ("concatenate(sep=-)", "concatenate(sep=-)"),
        ("concatenate(sep=\"\")", "concatenate(sep=\"\")"),
        ("concatenate(sep=\"|\")|trim", "concatenate(sep=\"|\")|trim"),
        ("concatenate(sep=\"a\\\"b\\\\c\")", "concatenate(sep=\"a\\\"b\\\\c\")"),
        ("concatenate(sep=é)", "concatenate(sep=é)"),
        ("uppercase|lowercase|uppercase", "uppercase|lowercase|uppercase"),
    ];
    for (expr, canonical) in cases {
        let pipeline = parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        assert_eq!(pipeline.to_string(), canonical, "{expr}");
        assert_eq!(parse(canonical), Ok(pipeline.clone()), "{expr}");
        assert_eq!(canonical.parse::<Pipeline>(), Ok(pipeline), "{expr}");
    }
}

#[test]
fn parse_errors_name_the_culprit() {
    let cases = [
        (
            "nosuch",
            "unknown transform \"nosuch\" (known: trim, uppercase, lowercase, phone_e164, date_iso, split_name, \
             concatenate)",
        ),
        ("Trim", "unknown transform \"Trim\""),
        ("trim|no-such(x=1)", "unknown transform \"no-such\""),
        ("split_name", "split_name needs argument part=first|last"),
        ("split_name()", "split_name needs argument part=first|last"),
        (
            "split_name(part=middle)",
            "part must be first or last for split_name, not \"middle\"",
        ),
        (
            "concatenate(x=1)",
            "unknown argument \"x\" for concatenate (accepted: sep)",
        ),
        ("trim(x=1)", "unknown argument \"x\" for trim (it takes no arguments)"),
        ("lowercase(sep=\" \")", "unknown argument \"sep\" for lowercase"),
        (
            "date_iso(region=US)",
            "unknown argument \"region\" for date_iso (accepted: order, output)",
        ),
        (
            "concatenate(sep=a, sep=b)",
            "argument \"sep\" is given twice for concatenate",
        ),
        ("phone_e164(region=ZZ)", "invalid region \"ZZ\" for phone_e164"),
        ("phone_e164(region=USA)", "invalid region \"USA\" for phone_e164"),
        ("phone_e164(region=\"\")", "invalid region \"\" for phone_e164"),
        (
            "date_iso(order=ymd)",
            "order must be mdy or dmy for date_iso, not \"ymd\"",
        ),
        (
            "date_iso(output=time)",
            "output must be date or datetime for date_iso, not \"time\"",
        ),
        ("trim|", "syntax error at column 6: empty step"),
        ("|trim", "syntax error at column 1: empty step"),
        ("trim||lowercase", "syntax error at column 6: empty step"),
        ("trim lowercase", "syntax error at column 6: unexpected 'l' after trim"),
        (
            "(trim)",
            "syntax error at column 1: expected a transform name, found '('",
        ),
        (
            "concatenate(sep=\"x)",
            "unterminated quoted value for argument \"sep\" of concatenate",
        ),
        (
            "concatenate(sep=\"\\n\")",
            "unknown escape in the value of argument \"sep\" of concatenate",
        ),
        (
            "concatenate(sep)",
            "expected `=` after argument \"sep\" of concatenate, found ')'",
        ),
        (
            "concatenate(sep=)",
            "expected a value for argument \"sep\" of concatenate, found ')'",
        ),
        (
            "concatenate(sep=,)",
            "expected a value for argument \"sep\" of concatenate, found ','",
        ),
        ("concatenate(sep=a", "unclosed `(` in the arguments of concatenate"),
        (
            "concatenate(sep=a b)",
            "expected `,` or `)` in the arguments of concatenate, found 'b'",
        ),
        (
            "concatenate(=a)",
            "expected an argument name for concatenate, found '='",
        ),
        (
            "concatenate(sep=a,)",
            "expected an argument name for concatenate, found ')'",
        ),
        ("trim)", "unexpected ')' after trim"),
        ("é|trim)", "syntax error at column 7"),
    ];
    for (expr, message) in cases {
        let err = parse(expr).expect_err(expr).to_string();
        assert!(err.contains(message), "{expr}: got {err:?}, want {message:?}");
    }
}

#[test]
fn input_counts() {
    let cases: [(&str, usize, Result<(), &str>); 9] = [
        ("", 1, Ok(())),
        ("trim", 1, Ok(())),
        ("concatenate", 1, Ok(())),
        ("concatenate", 3, Ok(())),
        ("concatenate(sep=\", \")|uppercase", 2, Ok(())),
        ("trim", 0, Err("a field pair needs at least one source field")),
        (
            "trim|concatenate",
            2,
            Err("trim cannot take 2 fields: concatenate must come first to take several fields"),
        ),
        ("split_name(part=first)", 3, Err("split_name cannot take 3 fields")),
        ("", 2, Err("the identity (empty) transform cannot take 2 fields")),
    ];
    for (expr, inputs, want) in cases {
        let got = check_inputs(&parse(expr).unwrap(), inputs).map_err(|e| e.to_string());
        match want {
            Ok(()) => assert_eq!(got, Ok(()), "{expr} with {inputs}"),
            Err(part) => assert!(
                got.as_ref().is_err_and(|e| e.contains(part)),
                "{expr} with {inputs}: {got:?}"
            ),
        }
    }
}

#[test]
fn inverses() {
    let self_inverse = [
        "",
        "trim",
        "uppercase",
        "lowercase|trim",
        "phone_e164(region=US)",
        "date_iso(order=dmy)",
    ];
    for expr in self_inverse {
        let pipeline = parse(expr).unwrap();
        assert_eq!(pipeline.inverse(), Some(pipeline.clone()), "{expr}");
    }
    for expr in [
        "split_name(part=first)",
        "concatenate",
        "trim|split_name(part=last)",
        "concatenate|trim",
    ] {
        assert_eq!(parse(expr).unwrap().inverse(), None, "{expr}");
    }
    assert!(parse("").unwrap().is_identity());
    assert!(parse("  ").unwrap().is_identity());
    assert!(Pipeline::default().is_identity());
    assert!(!parse("trim").unwrap().is_identity());
}

#[test]
fn missing_values_stay_missing() {
    let exprs = [
        "",
        "trim",
        "uppercase",
        "lowercase",
        "phone_e164",
        "date_iso",
        "split_name(part=first)",
        "split_name(part=last)",
        "concatenate",
        "trim|uppercase|date_iso",
    ];
    for expr in exprs {
        for inputs in [&[None][..], &[Some("")], &[]] {
            check(expr, inputs, &Context::default(), &Missing);
        }
    }
    for expr in [
        "trim",
        "phone_e164",
        "date_iso",
        "split_name(part=first)",
        "concatenate",
    ] {
        check(expr, &[Some(" \t ")], &Context::default(), &Missing);
    }
    check("", &[Some("  ")], &us(), &Out("  "));
}

#[test]
fn trim() {
    table(
        "trim",
        &[
            ("  a  b  ", Out("a  b")),
            ("\t\n x \u{3000}", Out("x")),
            ("x", Out("x")),
            ("\u{a0}José\u{a0}", Out("José")),
        ],
    );
    // The owned path: trimming a value an earlier step produced.
    table("uppercase|trim", &[("  ab c ", Out("AB C")), ("  é ", Out("É"))]);
}

#[test]
fn case_conversion() {
    table(
        "uppercase",
        &[
            ("hello World", Out("HELLO WORLD")),
            ("ALREADY", Out("ALREADY")),
            ("straße", Out("STRASSE")),
            ("josé álvarez", Out("JOSÉ ÁLVAREZ")),
            ("ǆ", Out("Ǆ")),
            ("123 !?", Out("123 !?")),
        ],
    );
    table(
        "lowercase",
        &[
            ("Hello WORLD", Out("hello world")),
            ("already", Out("already")),
            ("ÀÉÎ", Out("àéî")),
            ("ΟΔΟΣ", Out("οδος")),
            ("İ", Out("i\u{307}")),
        ],
    );
    table(
        "trim|lowercase",
        &[("  John.Doe@EXAMPLE.com ", Out("john.doe@example.com"))],
    );
    table(
        "lowercase|trim",
        &[("  John.Doe@EXAMPLE.com ", Out("john.doe@example.com"))],
    );
}

#[test]
fn phone_numbers() {
    table(
        "phone_e164",
        &[
            ("(415) 555-2671", Out("+14155552671")),
            ("415-555-2671", Out("+14155552671")),
            ("415.555.2671", Out("+14155552671")),
            ("4155552671", Out("+14155552671")),
            ("1 (415) 555-2671", Out("+14155552671")),
            ("  +1 415 555 2671  ", Out("+14155552671")),
            ("+44 20 7946 0958", Out("+442079460958")),
            ("415.555.2671 ext. 5", Out("+14155552671")),
            ("(212) 867-5309 x123", Out("+12128675309")),
            ("tel:+1-415-555-2671", Out("+14155552671")),
            (
                "12",
                Fails("phone_e164: \"12\" is not a valid phone number for region US"),
            ),
            (
                "415 555 267",
                Fails("\"415 555 267\" is not a valid phone number for region US"),
            ),
            ("(123) 456-7890", Fails("is not a valid phone number for region US")),
            ("not a phone", Fails("\"not a phone\" is not a valid phone number")),
            ("+999 1234 5678", Fails("is not a valid phone number")),
        ],
    );
    table(
        "phone_e164(region=GB)",
        &[
            ("020 7946 0958", Out("+442079460958")),
            ("+1 415 555 2671", Out("+14155552671")),
            ("(415) 555-2671", Fails("is not a valid phone number for region GB")),
        ],
    );
    table("phone_e164(region=DE)", &[("030 901820", Out("+4930901820"))]);
    let none = Context::default();
    check("phone_e164", &[Some("+1 415 555 2671")], &none, &Out("+14155552671"));
    check("phone_e164", &[Some("+44 20 7946 0958")], &none, &Out("+442079460958"));
    check(
        "phone_e164",
        &[Some("415 555 2671")],
        &none,
        &Fails("phone_e164: no region to interpret \"415 555 2671\""),
    );
    check(
        "phone_e164(region=US)",
        &[Some("415 555 2671")],
        &none,
        &Out("+14155552671"),
    );
    let bad = Context {
        default_region: Some("ZZ".to_owned()),
    };
    check(
        "phone_e164",
        &[Some("415 555 2671")],
        &bad,
        &Fails("invalid default region \"ZZ\""),
    );
    let lower = Context {
        default_region: Some("gb".to_owned()),
    };
    check("phone_e164", &[Some("020 7946 0958")], &lower, &Out("+442079460958"));
}

#[test]
fn long_values_are_cut_in_messages() {
    let long = "9".repeat(40) + &"x".repeat(100);
    let err = parse("phone_e164").unwrap().apply(&[Some(&long)], &us()).unwrap_err();
    assert!(err.problem.contains(&format!("{:?}…", &long[..60])), "{err}");
    assert!(!err.problem.contains(&long), "{err}");
}

#[test]
fn dates() {
    table(
        "date_iso",
        &[
            ("2024-03-05", Out("2024-03-05")),
            ("  2024-03-05  ", Out("2024-03-05")),
            ("2024-3-5", Out("2024-03-05")),
            ("2024/03/05", Out("2024-03-05")),
            ("2024-02-29", Out("2024-02-29")),
            ("0001-01-01", Out("0001-01-01")),
            ("2024-03-05T10:00:00Z", Out("2024-03-05T10:00:00Z")),
            ("2024-03-05t10:00:00z", Out("2024-03-05T10:00:00Z")),
            ("2024-03-05T10:00:00+02:00", Out("2024-03-05T08:00:00Z")),
            ("2024-03-05T23:30:00-05:00", Out("2024-03-06T04:30:00Z")),
            ("2024-03-05T10:00:00+0530", Out("2024-03-05T04:30:00Z")),
            ("2024-03-05T10:00:00+05", Out("2024-03-05T05:00:00Z")),
            ("2024-03-05T10:00:00.123456Z", Out("2024-03-05T10:00:00Z")),
            ("2024-03-05T10:00:00,5Z", Out("2024-03-05T10:00:00Z")),
            ("2024-03-05T10:00:00", Out("2024-03-05T10:00:00Z")),
            ("2024-03-05 10:00", Out("2024-03-05T10:00:00Z")),
            ("2016-12-31T23:59:60Z", Out("2016-12-31T23:59:59Z")),
            ("2024-12-31T23:00:00-02:00", Out("2025-01-01T01:00:00Z")),
            ("1709596800000", Out("2024-03-05T00:00:00Z")),
            ("99999999999", Out("1973-03-03T09:46:39Z")),
            ("9999999999999", Out("2286-11-20T17:46:39Z")),
            (
                "1709596800",
                Fails("\"1709596800\" is all digits but not epoch milliseconds (11 to 13 digits)"),
            ),
            ("20240305", Fails("is all digits but not epoch milliseconds")),
            ("03/15/2024", Out("2024-03-15")),
            ("15/03/2024", Out("2024-03-15")),
            ("3/15/2024", Out("2024-03-15")),
            ("12-25-2024", Out("2024-12-25")),
            ("05/05/2024", Out("2024-05-05")),
            (
                "03/05/2024",
                Fails("\"03/05/2024\" is ambiguous (month/day or day/month?); set order=mdy or order=dmy"),
            ),
            ("1/2/2024", Fails("is ambiguous")),
            ("05.03.2024", Out("2024-03-05")),
            ("5.3.2024", Out("2024-03-05")),
            (
                "3/4/24",
                Fails("\"3/4/24\" has a two-digit year; years need four digits"),
            ),
            ("03.04.24", Fails("two-digit year")),
            ("Jan 5 24", Fails("two-digit year")),
            ("2024-02-30", Fails("\"2024-02-30\" is not a valid date or time")),
            ("2023-02-29", Fails("is not a valid date")),
            ("2024-13-01", Fails("is not a valid date")),
            ("02/30/2024", Fails("is not a valid date")),
            ("13/13/2024", Fails("is not a valid date")),
            ("00/00/2024", Fails("is not a valid date")),
            ("2024-03-05T25:00:00Z", Fails("is not a valid date or time")),
            ("2024-03-05T10:61:00Z", Fails("is not a valid date or time")),
            ("2024-03-05T10:00:00+24:00", Fails("is not a valid date or time")),
            ("0000-01-01T00:30:00+01:00", Fails("out of the supported range")),
            ("Jan 5, 2024", Out("2024-01-05")),
            ("jan. 5, 2024", Out("2024-01-05")),
            ("January 5 2024", Out("2024-01-05")),
            ("5 January 2024", Out("2024-01-05")),
            ("5 JAN, 2024", Out("2024-01-05")),
            ("Sept. 5th, 2024", Out("2024-09-05")),
            ("February 29, 2023", Fails("is not a valid date")),
            ("Febuary 5, 2024", Fails("cannot read \"Febuary 5, 2024\" as a date")),
            ("5th 2024", Fails("cannot read")),
            ("Jan 5, 2024 10:00", Fails("cannot read")),
            ("yesterday", Fails("cannot read")),
            ("2024-03-05X", Fails("cannot read")),
            ("2024/03/05T10:00", Fails("cannot read")),
            ("2024-03-05T10", Fails("cannot read")),
            ("2024-03-05T10:00:00.Z", Fails("cannot read")),
            ("-1709596800000", Fails("cannot read")),
            ("12345-01-01", Fails("cannot read")),
        ],
    );
    table(
        "date_iso(order=mdy)",
        &[
            ("03/05/2024", Out("2024-03-05")),
            ("15/03/2024", Fails("is not a valid date")),
            ("05.03.2024", Out("2024-03-05")),
            ("2024-03-05", Out("2024-03-05")),
        ],
    );
    table(
        "date_iso(order=dmy)",
        &[("03/05/2024", Out("2024-05-03")), ("03-05-2024", Out("2024-05-03"))],
    );
    table(
        "date_iso(output=date)",
        &[
            ("2024-03-05T23:30:00-05:00", Out("2024-03-06")),
            ("1709596800000", Out("2024-03-05")),
            ("2024-03-05", Out("2024-03-05")),
        ],
    );
    table(
        "date_iso(output=datetime)",
        &[
            ("2024-03-05", Out("2024-03-05T00:00:00Z")),
            ("Jan 5, 2024", Out("2024-01-05T00:00:00Z")),
            ("2024-03-05T10:00:00+01:00", Out("2024-03-05T09:00:00Z")),
        ],
    );
}

#[test]
fn names() {
    let cases = [
        ("John Doe", Some("John"), Some("Doe")),
        ("Mary Ann Smith", Some("Mary Ann"), Some("Smith")),
        ("Doe, John", Some("John"), Some("Doe")),
        ("Doe,John", Some("John"), Some("Doe")),
        ("de la Cruz, Juan", Some("Juan"), Some("de la Cruz")),
        ("Cher", Some("Cher"), None),
        ("  Cher  ", Some("Cher"), None),
        ("  John    Doe  ", Some("John"), Some("Doe")),
        ("Mary\t Ann \n Smith", Some("Mary Ann"), Some("Smith")),
        ("José Álvarez", Some("José"), Some("Álvarez")),
        ("Zoë Ørsted-Ångström", Some("Zoë"), Some("Ørsted-Ångström")),
        ("Ludwig van Beethoven", Some("Ludwig"), Some("van Beethoven")),
        ("Juan de la Cruz", Some("Juan"), Some("de la Cruz")),
        ("Leonardo da Vinci", Some("Leonardo"), Some("da Vinci")),
        ("Vincent van der Berg", Some("Vincent"), Some("van der Berg")),
        ("Mohammed bin Salman", Some("Mohammed"), Some("bin Salman")),
        ("Anna De Luca", Some("Anna De"), Some("Luca")),
        ("van Beethoven", Some("van"), Some("Beethoven")),
        ("Martin Luther King Jr.", Some("Martin Luther"), Some("King Jr.")),
        ("John Smith Sr", Some("John"), Some("Smith Sr")),
        ("Henry Ford II", Some("Henry"), Some("Ford II")),
        ("John Doe III", Some("John"), Some("Doe III")),
        ("Louis de Bourbon IV", Some("Louis"), Some("de Bourbon IV")),
        ("John Smith, Jr.", Some("John"), Some("Smith Jr.")),
        ("King, Martin Luther, Jr.", Some("Martin Luther"), Some("King Jr.")),
        ("King Jr.", Some("King"), Some("Jr.")),
        ("Doe,", Some("Doe"), None),
        (", John", Some("John"), None),
        (" , ", None, None),
        ("", None, None),
        ("   ", None, None),
    ];
    for (name, first, last) in cases {
        for (expr, want) in [("split_name(part=first)", first), ("split_name(part=last)", last)] {
            check(expr, &[Some(name)], &us(), &want.map_or(Missing, Out));
        }
    }
    // The owned path: splitting a value an earlier step produced.
    table(
        "lowercase|split_name(part=last)",
        &[("Ludwig   VAN Beethoven", Out("van beethoven"))],
    );
    table(
        "uppercase|split_name(part=last)",
        &[("Ludwig van Beethoven", Out("BEETHOVEN"))],
    );
    table("split_name(part=first)|uppercase", &[("Doe, John", Out("JOHN"))]);
}

#[test]
fn concatenation() {
    let cases: [(&str, &[Option<&str>], Want); 11] = [
        (
            "concatenate",
            &[Some("1 Main St"), Some("Springfield"), Some("12345")],
            Out("1 Main St Springfield 12345"),
        ),
        (
            "concatenate(sep=\", \")",
            &[Some(" 1 Main St "), None, Some(""), Some(" "), Some("Springfield")],
            Out("1 Main St, Springfield"),
        ),
        ("concatenate(sep=\"\")", &[Some("a"), Some("b"), Some("c")], Out("abc")),
        ("concatenate(sep=\"|\")", &[Some("a"), Some("b")], Out("a|b")),
        ("concatenate", &[None, Some("  only  "), None], Out("only")),
        ("concatenate", &[None, None, Some("  ")], Missing),
        ("concatenate", &[Some("  one  ")], Out("one")),
        (
            "concatenate(sep=\", \")|uppercase",
            &[Some("main st"), Some("springfield")],
            Out("MAIN ST, SPRINGFIELD"),
        ),
        (
            "concatenate|split_name(part=last)",
            &[Some("Juan"), Some("de la Cruz")],
            Out("de la Cruz"),
        ),
        (
            "concatenate|date_iso",
            &[Some("Jan 5,"), Some("2024")],
            Out("2024-01-05"),
        ),
        (
            "trim|concatenate",
            &[Some(" a "), Some("b")],
            Fails("trim: got 2 fields"),
        ),
    ];
    for (expr, inputs, want) in cases {
        check(expr, inputs, &us(), &want);
    }
    check(
        "",
        &[Some("a"), Some("b")],
        &us(),
        &Fails("concatenate must come first"),
    );
}

#[test]
fn pipelines_chain() {
    table(
        "trim|split_name(part=first)|lowercase",
        &[("  MARY ANN SMITH ", Out("mary ann")), ("Cher", Out("cher"))],
    );
    table("split_name(part=last)|uppercase", &[("Cher", Missing)]);
    table("date_iso(output=date)|trim", &[("1709596800000", Out("2024-03-05"))]);
    table("phone_e164|trim", &[("(415) 555-2671", Out("+14155552671"))]);
    table("", &[("  as is ", Out("  as is "))]);
}
