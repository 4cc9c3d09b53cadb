//! Property tests: the mapping file parser, the shape validation and the schedule parser
//! never panic, whatever text they get, and refuse bad input with a bounded message.

use proptest::prelude::*;

use super::schedule::Schedule;
use super::spec::parse_file;
use super::validate::check_shape;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn schedules_never_panic(text in ".{0,300}") {
        if let Err(error) = Schedule::parse(&text) {
            prop_assert!(error.to_string().len() < 400);
        }
    }

    #[test]
    fn schedule_shaped_text_never_panics(number in any::<u64>(), unit in "[smhdx]", cron in "[0-9*/,-]{1,6}( [0-9*/,-]{1,6}){4}") {
        let interval = format!("{number}{unit}");
        if let Ok(schedule) = Schedule::parse(&interval) {
            prop_assert!(schedule.next_after(jiff::Timestamp::now()).is_some());
        }
        if let Ok(schedule) = Schedule::parse(&cron) {
            prop_assert!(schedule.next_after(jiff::Timestamp::now()).is_some());
        }
    }

    #[test]
    fn mapping_files_never_panic(text in ".{0,2000}") {
        if let Ok(spec) = parse_file(&text) {
            let _ = check_shape(&spec);
        }
    }

    #[test]
    fn mapping_shaped_files_never_panic(
        name in ".{0,300}",
        pairs in prop::collection::vec(("[a-z.,]{0,20}", "[a-z.]{0,20}", "[a-z_|()=, \"]{0,40}"), 0..30),
        schedule in ".{0,40}",
        direction in "(source_to_target|target_to_source|bidirectional|sideways)",
    ) {
        let mut text = format!("name: {name:?}\nsource: {{ connection: c1, object: contacts }}\ntarget: {{ connection: c2, object: clients }}\ndirection: {direction}\nschedule: {schedule:?}\nfieldPairs:\n");
        for (source, target, transform) in &pairs {
            text.push_str(&format!("  - {{ sourceField: {source:?}, targetField: {target:?}, transform: {transform:?} }}\n"));
        }
        if let Ok(spec) = parse_file(&text) {
            for problem in check_shape(&spec) {
                prop_assert!(problem.len() < 2000, "{}", problem);
            }
        }
    }
}
