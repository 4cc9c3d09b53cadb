//! Property tests: generated pipelines round-trip through their text form, `apply` and `parse`
//! never panic on arbitrary input, and the fast phone validity check agrees with phonenumber's.

use phonenumber::country::Id;
use proptest::prelude::*;

use super::date::{DateOptions, Order, Output};
use super::name::Part;
use super::step::Step;
use super::*;

fn region() -> impl Strategy<Value = Option<Id>> {
    prop::option::of(prop::sample::select(vec![
        Id::US,
        Id::CA,
        Id::GB,
        Id::DE,
        Id::FR,
        Id::AU,
        Id::JP,
        Id::BR,
        Id::IN,
    ]))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        Just(Step::Trim),
        Just(Step::Uppercase),
        Just(Step::Lowercase),
        region().prop_map(|region| Step::PhoneE164 { region }),
        (
            prop::option::of(prop_oneof![Just(Order::Mdy), Just(Order::Dmy)]),
            prop::option::of(prop_oneof![Just(Output::Date), Just(Output::Datetime)]),
        )
            .prop_map(|(order, output)| Step::DateIso(DateOptions { order, output })),
        prop_oneof![Just(Part::First), Just(Part::Last)].prop_map(Step::SplitName),
        prop_oneof![any::<String>(), "[ ,;|\"\\\\a-z-]{0,4}"].prop_map(|sep| Step::Concatenate { sep }),
    ]
}

fn pipeline() -> impl Strategy<Value = Pipeline> {
    prop::collection::vec(step(), 0..5).prop_map(|steps| Pipeline { steps })
}

/// Values that reach deep into the steps as well as arbitrary text.
fn value() -> impl Strategy<Value = Option<String>> {
    prop::option::of(prop_oneof![
        any::<String>(),
        "[0-9+() .x-]{0,20}",
        "\\+?[0-9]{1,16}",
        "[0-9]{1,4}[-/.][0-9]{1,3}[-/.][0-9]{1,5}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{0,10})?)?([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)?",
        "(Jan|sept\\.|MAY|[a-z]{3,9})? ?[0-9]{0,3}(st|th)?,? ?[0-9]{0,5}",
        "[A-Za-zé,. ]{0,12}( (van|de|la|Jr\\.|III|,))*( [A-Za-z]{0,8}){0,3}",
    ])
}

fn context() -> impl Strategy<Value = Context> {
    prop::option::of(prop::sample::select(vec!["US", "gb", "ZZ", "", "DEU"])).prop_map(|region| Context {
        default_region: region.map(str::to_owned),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn pipelines_round_trip(pipeline in pipeline()) {
        let text = pipeline.to_string();
        prop_assert_eq!(parse(&text), Ok(pipeline), "{}", text);
    }

    #[test]
    fn apply_never_panics(
        pipeline in pipeline(),
        inputs in prop::collection::vec(value(), 0..4),
        ctx in context(),
    ) {
        let inputs: Vec<Option<&str>> = inputs.iter().map(Option::as_deref).collect();
        if let Ok(Some(out)) = pipeline.apply(&inputs, &ctx) {
            prop_assert!(!out.is_empty());
        }
    }

    #[test]
    fn parse_never_panics(expr in prop_oneof![any::<String>(), "[a-z_0-9()=,| \"\\\\é-]{0,40}"]) {
        if let Ok(pipeline) = parse(&expr) {
            prop_assert_eq!(parse(&pipeline.to_string()), Ok(pipeline));
        }
    }

    #[test]
    fn identity_passes_values_through(value in ".+") {
        prop_assert_eq!(Pipeline::default().apply(&[Some(&value)], &Context::default()), Ok(Some(value.clone())));
    }

    #[test]
    fn fast_validity_agrees_with_phonenumber(
        number in prop_oneof![
            "\\+[0-9]{1,3} ?[0-9]{4,12}",
            "[0-9]{6,12}",
            "\\+1 ?[2-9][0-9]{2}[2-9][0-9]{6}",
            "\\+44 ?[1-9][0-9]{9}",
            "\\+49 ?[1-9][0-9]{6,10}",
            "0[1-9][0-9]{8,9}",
        ],
        region in region(),
    ) {
        if let Ok(parsed) = phonenumber::parse(region, &number) {
            prop_assert_eq!(phone::is_valid(&parsed), phonenumber::is_valid(&parsed), "{}", number);
        }
    }
}
