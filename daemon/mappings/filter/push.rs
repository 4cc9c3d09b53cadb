//! Reductions of a compiled filter to what a provider's query can express: the conditions
//! every passing record satisfies (for queries that only AND), the filter with what cannot be
//! said dropped (a superset of what it admits), and that as OR-ed groups of AND-ed conditions.

use super::{Compiled, Condition};

/// A filter reduced to what a provider's query can express: `None` where nothing is pushed
/// (every record passes).
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed<T> {
    All(Vec<Pushed<T>>),
    Any(Vec<Pushed<T>>),
    Condition(T),
}

impl Compiled {
    /// The conditions every passing record satisfies: the condition itself, or those of
    /// `all` groups (nested `all`s included), for query languages that only AND.
    pub fn conjuncts(&self) -> Vec<&Condition> {
        match self {
            Compiled::All(children) => children.iter().flat_map(Compiled::conjuncts).collect(),
            Compiled::Any(children) if children.len() == 1 => children[0].conjuncts(),
            Compiled::Any(_) => Vec::new(),
            Compiled::Condition(condition) => vec![condition],
        }
    }

    /// The filter with each condition `push` cannot express dropped: a dropped condition of
    /// an `all` widens it, a dropped one of an `any` drops the whole `any`.
    pub fn superset<T>(&self, push: &dyn Fn(&Condition) -> Option<T>) -> Option<Pushed<T>> {
        match self {
            Compiled::Condition(condition) => push(condition).map(Pushed::Condition),
            Compiled::All(children) => {
                let kept: Vec<Pushed<T>> = children.iter().filter_map(|c| c.superset(push)).collect();
                match kept.len() {
                    0 => None,
                    1 => kept.into_iter().next(),
                    _ => Some(Pushed::All(kept)),
                }
            }
            Compiled::Any(children) => {
                let kept: Option<Vec<Pushed<T>>> = children.iter().map(|c| c.superset(push)).collect();
                match kept? {
                    kept if kept.len() == 1 => kept.into_iter().next(),
                    kept => Some(Pushed::Any(kept)),
                }
            }
        }
    }
}

impl<T: Clone> Pushed<T> {
    /// As OR-ed groups of AND-ed conditions, with at most `max_groups` groups: an `all` that
    /// would multiply past it keeps fewer conditions (wider), an `any` past it is dropped.
    pub fn groups(&self, max_groups: usize) -> Option<Vec<Vec<T>>> {
        match self {
            Pushed::Condition(condition) => Some(vec![vec![condition.clone()]]),
            Pushed::Any(children) => {
                let mut groups = Vec::new();
                for child in children {
                    groups.extend(child.groups(max_groups)?);
                    if groups.len() > max_groups {
                        return None;
                    }
                }
                Some(groups)
            }
            Pushed::All(children) => {
                let mut groups: Vec<Vec<T>> = vec![Vec::new()];
                for child in children {
                    let Some(child_groups) = child.groups(max_groups) else {
                        continue;
                    };
                    if groups.len() * child_groups.len() > max_groups {
                        continue;
                    }
                    groups = groups
                        .iter()
                        .flat_map(|group| {
                            child_groups.iter().map(move |extra| {
                                let mut merged = group.clone();
                                merged.extend(extra.iter().cloned());
                                merged
                            })
                        })
                        .collect();
                }
                (groups.iter().any(|g| !g.is_empty())).then_some(groups)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::FilterOp;
    use super::super::tests::{compile, parse, record};
    use super::*;

    #[test]
    fn groups_combine_and_reduce_to_what_a_provider_can_push() {
        let filter = compile(&parse(
            "all: [{field: city, op: equals, value: SF}, {any: [{field: score, op: after, value: 5}, {field: city, op: contains, value: x}]}]",
        ));
        assert!(filter.admits(&record(&[("city", "sf"), ("score", "6")])));
        assert!(!filter.admits(&record(&[("city", "sf"), ("score", "4")])));
        // `contains` cannot be pushed: the `any` holding it goes, the `all` keeps the rest.
        let push = |c: &Condition| (c.op != FilterOp::Contains).then(|| c.field.clone());
        assert_eq!(filter.superset(&push), Some(Pushed::Condition("city".to_owned())));
        let all_push = |c: &Condition| Some(c.field.clone());
        let groups = filter.superset(&all_push).unwrap().groups(5).unwrap();
        assert_eq!(
            groups,
            vec![
                vec!["city".to_owned(), "score".to_owned()],
                vec!["city".to_owned(), "city".to_owned()]
            ]
        );
        assert_eq!(
            filter.superset(&all_push).unwrap().groups(1).unwrap(),
            vec![vec!["city".to_owned()]]
        );
        assert_eq!(filter.conjuncts().len(), 1);
        assert_eq!(filter.fields(), vec!["city", "score", "city"]);
    }
}
