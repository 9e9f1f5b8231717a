"""Character-level sequence-to-sequence with LSTMs, in the style of keras.io's "lstm_seq2seq" example.

keras.io trains on English-French sentence pairs (fra.txt). Here the pairs are made up locally: the target is
the input string of letters reversed and shifted by one letter ("abc" -> "dcb"), so the model has to carry the
whole input through the encoder's states. The program is the keras.io one: an LSTM encoder whose final states
(`return_state=True`) are the decoder LSTM's `initial_state`, trained with teacher forcing, saved and loaded,
then taken apart into a separate encoder model and a one-step decoder model for a greedy decoding loop.

Run: python examples/real/lstm_seq2seq.py   (writes s2s_model.keras into the current folder)
"""
import numpy as np

import fncompiler as keras

keras.utils.set_random_seed(0)

batch_size = 64
epochs = 30
latent_dim = 64
num_samples = 2000

# ---------------------------------------------------------------------- data (stands in for fra.txt)
rng = np.random.default_rng(0)
letters = "abcdefgh"
input_texts, target_texts = [], []
for _ in range(num_samples):
    text = "".join(rng.choice(list(letters), size=rng.integers(3, 7)))
    shifted = "".join(letters[(letters.index(ch) + 1) % len(letters)] for ch in reversed(text))
    input_texts.append(text)
    target_texts.append("\t" + shifted + "\n")   # "\t" starts a target sequence, "\n" ends it

input_characters = sorted(set("".join(input_texts)))
target_characters = sorted(set("".join(target_texts)))
num_encoder_tokens = len(input_characters)
num_decoder_tokens = len(target_characters)
max_encoder_seq_length = max(len(t) for t in input_texts)
max_decoder_seq_length = max(len(t) for t in target_texts)
print("Number of samples:", len(input_texts))
print("Number of unique input tokens:", num_encoder_tokens)
print("Number of unique output tokens:", num_decoder_tokens)
print("Max sequence length for inputs:", max_encoder_seq_length)
print("Max sequence length for outputs:", max_decoder_seq_length)

input_token_index = {char: i for i, char in enumerate(input_characters)}
target_token_index = {char: i for i, char in enumerate(target_characters)}

encoder_input_data = np.zeros((len(input_texts), max_encoder_seq_length, num_encoder_tokens), dtype="float32")
decoder_input_data = np.zeros((len(input_texts), max_decoder_seq_length, num_decoder_tokens), dtype="float32")
decoder_target_data = np.zeros((len(input_texts), max_decoder_seq_length, num_decoder_tokens), dtype="float32")
for i, (input_text, target_text) in enumerate(zip(input_texts, target_texts)):
    for t, char in enumerate(input_text):
        encoder_input_data[i, t, input_token_index[char]] = 1.0
    for t, char in enumerate(target_text):
        # decoder_target_data is ahead of decoder_input_data by one timestep (teacher forcing)
        decoder_input_data[i, t, target_token_index[char]] = 1.0
        if t > 0:
            decoder_target_data[i, t - 1, target_token_index[char]] = 1.0
    decoder_input_data[i, t + 1:, target_token_index["\n"]] = 1.0   # pad with the end token, as keras.io
    decoder_target_data[i, t:, target_token_index["\n"]] = 1.0

# ---------------------------------------------------------------------- the training model
encoder_inputs = keras.Input(shape=(None, num_encoder_tokens))
encoder = keras.layers.LSTM(latent_dim, return_state=True)
encoder_outputs, state_h, state_c = encoder(encoder_inputs)
encoder_states = [state_h, state_c]   # the encoder's outputs are discarded; only its states are kept

decoder_inputs = keras.Input(shape=(None, num_decoder_tokens))
decoder_lstm = keras.layers.LSTM(latent_dim, return_sequences=True, return_state=True)
decoder_outputs, _, _ = decoder_lstm(decoder_inputs, initial_state=encoder_states)
decoder_dense = keras.layers.Dense(num_decoder_tokens, activation="softmax")
decoder_outputs = decoder_dense(decoder_outputs)

model = keras.Model([encoder_inputs, decoder_inputs], decoder_outputs)
model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.01), loss="categorical_crossentropy",
              metrics=["accuracy"])
history = model.fit([encoder_input_data, decoder_input_data], decoder_target_data, batch_size=batch_size,
                    epochs=epochs, validation_split=0.2, verbose=2)
model.save("s2s_model.keras")

# ---------------------------------------------------------------------- inference models from the saved model
model = keras.models.load_model("s2s_model.keras")

encoder_inputs = model.input[0]                                   # input_1
encoder_outputs, state_h_enc, state_c_enc = model.layers[2].output   # lstm
encoder_states = [state_h_enc, state_c_enc]
encoder_model = keras.Model(encoder_inputs, encoder_states)

decoder_inputs = model.input[1]                                   # input_2
decoder_state_input_h = keras.Input(shape=(latent_dim,))
decoder_state_input_c = keras.Input(shape=(latent_dim,))
decoder_states_inputs = [decoder_state_input_h, decoder_state_input_c]
decoder_lstm = model.layers[3]
decoder_outputs, state_h_dec, state_c_dec = decoder_lstm(decoder_inputs, initial_state=decoder_states_inputs)
decoder_states = [state_h_dec, state_c_dec]
decoder_dense = model.layers[4]
decoder_outputs = decoder_dense(decoder_outputs)
decoder_model = keras.Model([decoder_inputs] + decoder_states_inputs, [decoder_outputs] + decoder_states)

reverse_target_char_index = {i: char for char, i in target_token_index.items()}


def decode_sequence(input_seq):
    states_value = encoder_model.predict(input_seq, verbose=0)   # the input as state vectors
    target_seq = np.zeros((1, 1, num_decoder_tokens))
    target_seq[0, 0, target_token_index["\t"]] = 1.0            # start with the start character
    decoded_sentence = ""
    while True:
        output_tokens, h, c = decoder_model.predict([target_seq] + states_value, verbose=0)
        sampled_token_index = int(np.argmax(output_tokens[0, -1, :]))
        sampled_char = reverse_target_char_index[sampled_token_index]
        decoded_sentence += sampled_char
        if sampled_char == "\n" or len(decoded_sentence) > max_decoder_seq_length:
            break
        target_seq = np.zeros((1, 1, num_decoder_tokens))
        target_seq[0, 0, sampled_token_index] = 1.0
        states_value = [h, c]
    return decoded_sentence


# The decoder run one step at a time gives what the training model gives with teacher forcing.
teacher = model.predict([encoder_input_data[:1], decoder_input_data[:1]], verbose=0)
states_value = encoder_model.predict(encoder_input_data[:1], verbose=0)
stepwise, (h, c) = [], states_value
for t in range(max_decoder_seq_length):
    out, h, c = decoder_model.predict([decoder_input_data[:1, t:t + 1], h, c], verbose=0)
    stepwise.append(out[:, 0])
np.testing.assert_allclose(np.stack(stepwise, axis=1), teacher, atol=1e-4)

correct = 0
held_out = range(len(input_texts) - 20, len(input_texts))   # from the validation split
for seq_index in held_out:
    input_seq = encoder_input_data[seq_index: seq_index + 1]
    decoded_sentence = decode_sequence(input_seq)
    correct += decoded_sentence == target_texts[seq_index][1:]
    if seq_index < len(input_texts) - 15:
        print("-")
        print("Input sentence:", input_texts[seq_index])
        print("Decoded sentence:", decoded_sentence.strip())
print(f"greedy decoding: {correct} of {len(held_out)} held-out sequences exactly right")
assert history.history["loss"][-1] < 0.5 * history.history["loss"][0], history.history["loss"]
assert correct >= len(held_out) // 2, correct
print("OK lstm_seq2seq")
