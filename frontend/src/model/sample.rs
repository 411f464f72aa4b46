//! Text generation with a trained sequence model, one token at a time (neon's
//! `text_generation_lstm.py`): the model reads a prompt, then each drawn token is fed back
//! as the next input, the recurrent layers carrying their state from step to step.

use super::{Model, ModelError};
use xenon_runtime::{Tensor, rng};

/// How [`Model::sample`] draws tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SampleOptions {
    /// Divides the log-probabilities before drawing (`p^(1/T)`, renormalized): below 1
    /// more conservative, above 1 more varied; 0 always takes the most likely token.
    /// Default 1: the model's own distribution.
    pub temperature: f64,
    /// The seed of the draws: the same seed, prompt and weights give the same tokens.
    /// Default 0.
    pub seed: u64,
}

impl Default for SampleOptions {
    fn default() -> SampleOptions {
        SampleOptions {
            temperature: 1.0,
            seed: 0,
        }
    }
}

impl Model {
    /// Reads the token ids `prompt` and then draws `n` more, each from the model's output
    /// for the previous one, and returns the drawn ids (`on_token` sees each as it comes).
    ///
    /// The model takes one time step of one token: an input of shape `[1, V]` (one-hot,
    /// fed as an id when the model is fed token ids, see [`Model::with_token_ids`]) or
    /// `[1]` (an id, for a model starting with a `LookupTable`), and gives a
    /// distribution over the `V` tokens (see [`Model::for_input`] to get such a model from
    /// one trained on longer sequences). Its recurrent states start from zeros.
    pub fn sample(
        &mut self,
        prompt: &[u32],
        n: usize,
        opts: SampleOptions,
        mut on_token: impl FnMut(u32),
    ) -> Result<Vec<u32>, ModelError> {
        let shape = self.input_shape().to_vec();
        let onehot = match *shape {
            [1, v] => Some(v),
            [1] => None,
            _ => {
                return Err(ModelError::Sample(format!(
                    "the model takes inputs of shape {shape:?}; sampling feeds one token at a time, [1, V] one-hot or [1] ids"
                )));
            }
        };
        let v = *self.output_shape().last().unwrap_or(&0);
        if onehot.is_some_and(|w| w != v) || self.output_shape().iter().product::<usize>() != v {
            return Err(ModelError::Sample(format!(
                "the model outputs {:?} per step, not one distribution over its {} input tokens",
                self.output_shape(),
                onehot.unwrap_or(v)
            )));
        }
        if !(opts.temperature >= 0.0 && opts.temperature.is_finite()) {
            return Err(ModelError::Sample(format!(
                "the temperature must be a finite number ≥ 0, got {}",
                opts.temperature
            )));
        }
        if prompt.is_empty() {
            return Err(ModelError::Sample("the prompt has no tokens".into()));
        }
        if let Some(&id) = prompt.iter().find(|&&id| id as usize >= v) {
            return Err(ModelError::Sample(format!(
                "prompt token id {id} is outside the model's {v} tokens"
            )));
        }
        // One-hot rows, unless the model takes ids.
        let one_hot = onehot.is_some() && self.token_ids().is_none();
        let fed = self.fed_shape();
        let input = |id: u32| -> Tensor {
            let mut x = vec![0.0f32; fed.iter().product()];
            match one_hot {
                true => x[id as usize] = 1.0,
                false => x[0] = id as f32,
            }
            Tensor::from_f32([&[1][..], &fed].concat(), x).expect("one step")
        };
        self.reset_states(1);
        let mut probs = Vec::new();
        for &id in prompt {
            probs = self.predict(&input(id))?.to_f64_vec();
        }
        let mut out = Vec::with_capacity(n);
        for k in 0..n {
            let id = draw(
                &probs,
                opts.temperature,
                rng::uniform_f64(opts.seed, 0, k as u64),
            );
            on_token(id);
            out.push(id);
            if k + 1 < n {
                probs = self.predict(&input(id))?.to_f64_vec();
            }
        }
        Ok(out)
    }
}

/// The token drawn from `probs` sharpened or flattened by `temperature` (the most likely
/// at 0), with `u` uniform in `[0, 1)`.
fn draw(probs: &[f64], temperature: f64, u: f64) -> u32 {
    let argmax = || {
        probs
            .iter()
            .enumerate()
            .fold((0, f64::NEG_INFINITY), |best, (i, &p)| {
                if p > best.1 { (i, p) } else { best }
            })
            .0 as u32
    };
    if temperature == 0.0 {
        return argmax();
    }
    let w: Vec<f64> = probs
        .iter()
        .map(|&p| p.max(0.0).powf(1.0 / temperature))
        .collect();
    let total: f64 = w.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return argmax();
    }
    let mut acc = 0.0;
    for (i, &wi) in w.iter().enumerate() {
        acc += wi / total;
        if u < acc {
            return i as u32;
        }
    }
    (w.len() - 1) as u32
}

#[cfg(test)]
mod tests {
    use super::draw;

    #[test]
    fn draws_follow_the_distribution_and_the_temperature() {
        let p = [0.1, 0.6, 0.3];
        assert_eq!(draw(&p, 1.0, 0.05), 0);
        assert_eq!(draw(&p, 1.0, 0.5), 1);
        assert_eq!(draw(&p, 1.0, 0.95), 2);
        assert_eq!(draw(&p, 0.0, 0.99), 1); // the most likely
        // A low temperature makes the most likely token nearly certain.
        assert_eq!(draw(&p, 0.05, 0.99), 1);
    }
}
