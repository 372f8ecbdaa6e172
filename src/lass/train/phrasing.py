"""Labels -> many query phrasings, so a model does not overfit one way of asking."""
from __future__ import annotations

TEMPLATES = [
    "the sound of {x}",
    "{x}",
    "a recording of {x}",
    "{x} sound",
    "sound of {x}",
    "the {x}",
    "{x} in the background",
    "someone recorded {x}",
    "audio of {x}",
    "{x} can be heard",
    "a clip of {x}",
    "extract the {x}",
]

# Natural descriptions of the ESC-50 classes, in addition to the label itself.
PARAPHRASES: dict[str, list[str]] = {
    "dog": ["a dog barking", "a barking dog", "dog barks"],
    "rooster": ["a rooster crowing", "a cock crowing in the morning"],
    "pig": ["a pig oinking", "pigs grunting"],
    "cow": ["a cow mooing", "cattle mooing"],
    "frog": ["frogs croaking", "a frog croaking"],
    "cat": ["a cat meowing", "a meowing cat"],
    "hen": ["a hen clucking", "chickens clucking"],
    "insects": ["insects buzzing", "buzzing of insects"],
    "sheep": ["a sheep bleating", "sheep baaing"],
    "crow": ["a crow cawing", "crows cawing"],
    "rain": ["rain falling", "rainfall", "raindrops"],
    "sea waves": ["ocean waves", "waves crashing on the shore"],
    "crackling fire": ["a fire crackling", "a crackling campfire"],
    "crickets": ["crickets chirping", "chirping crickets"],
    "chirping birds": ["birds chirping", "birdsong", "birds singing"],
    "water drops": ["water dripping", "dripping water"],
    "wind": ["wind blowing", "a strong wind"],
    "pouring water": ["water being poured", "pouring a glass of water"],
    "toilet flush": ["a toilet flushing", "flushing toilet"],
    "thunderstorm": ["thunder", "a thunderstorm with thunder"],
    "crying baby": ["a baby crying", "an infant crying"],
    "sneezing": ["a person sneezing", "someone sneezes"],
    "clapping": ["people clapping", "hands clapping", "applause"],
    "breathing": ["a person breathing", "heavy breathing"],
    "coughing": ["a person coughing", "someone coughs"],
    "footsteps": ["footsteps walking", "someone walking"],
    "laughing": ["people laughing", "a person laughing", "laughter"],
    "brushing teeth": ["someone brushing their teeth", "a toothbrush scrubbing"],
    "snoring": ["a person snoring", "someone snoring"],
    "drinking sipping": ["someone drinking", "sipping a drink"],
    "door wood knock": ["knocking on a wooden door", "a knock on the door"],
    "mouse click": ["a computer mouse clicking", "mouse clicks"],
    "keyboard typing": ["typing on a keyboard", "someone typing"],
    "door wood creaks": ["a creaking door", "a wooden door creaking"],
    "can opening": ["a can being opened", "opening a soda can"],
    "washing machine": ["a washing machine running", "laundry machine"],
    "vacuum cleaner": ["a vacuum cleaner running", "vacuuming"],
    "clock alarm": ["an alarm clock ringing", "an alarm going off"],
    "clock tick": ["a clock ticking", "ticking clock"],
    "glass breaking": ["glass shattering", "breaking glass"],
    "helicopter": ["a helicopter flying", "helicopter rotor noise"],
    "chainsaw": ["a chainsaw cutting", "a chainsaw running"],
    "siren": ["an emergency siren", "a police siren", "an ambulance siren"],
    "car horn": ["a car horn honking", "honking"],
    "engine": ["an engine running", "a motor engine idling"],
    "train": ["a train passing", "a passing train"],
    "church bells": ["church bells ringing", "bells ringing"],
    "airplane": ["an airplane flying overhead", "a jet plane"],
    "fireworks": ["fireworks exploding", "firecrackers"],
    "hand saw": ["a hand saw cutting wood", "sawing wood"],
}

# The labels only configs/music_stems.csv uses. Labels of the default recipe's data (configs/extra_sources.csv,
# e.g. "drums", "piano") get none here: that would change the recipe the bundled model was trained with.
# "a drum", "percussion", "an orchestra playing" and "classical music" are left out on purpose: they are queries
# of the held-out recordings (configs/heldout_recordings.csv), which must stay unheard to measure generalisation.
PARAPHRASES.update({
    "bass guitar": ["bass", "a bass line", "an electric bass"],
    "guitar": ["a guitar", "an electric guitar", "someone playing guitar"],
    "vocals": ["a singer", "a singing voice", "someone singing"],
    "synthesizer": ["a synth", "synth", "electronic keyboard"],
})


# Broader names for sets of classes ("animals", "music", "traffic"): with `mixing.group_prob` an example may ask
# for one of its target's groups, and its reference is then every source of that group in the mixture. The network
# so learns what a broad word covers, and a query between classes (a sound it was not trained on, "the music" of
# "speech, but not the music") lands among trained meanings rather than off them. Each group: (its phrasings, its
# classes); a group is used where at least two of its classes are in the training data. The held-out recordings'
# queries (above) stay out of the phrasings.
GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "animals": (["an animal", "animal sounds", "animal noises"],
                ["dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow", "crickets",
                 "chirping birds", "a whale singing"]),
    "farm animals": (["livestock", "animals on a farm"], ["rooster", "pig", "cow", "hen", "sheep"]),
    "water": (["water sounds", "running water"], ["rain", "sea waves", "water drops", "pouring water", "toilet flush"]),
    "weather": (["stormy weather", "bad weather"], ["rain", "wind", "thunderstorm"]),
    "nature sounds": (["sounds of nature", "natural sounds", "the outdoors"],
                      ["rain", "sea waves", "crackling fire", "crickets", "chirping birds", "water drops", "wind",
                       "thunderstorm", "insects", "frog"]),
    "human sounds": (["sounds a person makes", "a person", "people"],
                     ["crying baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing",
                      "brushing teeth", "snoring", "drinking sipping", "speech", "a woman singing"]),
    "human voices": (["a voice", "voices"], ["crying baby", "laughing", "speech", "a woman singing"]),
    "household sounds": (["noises in the house", "indoor sounds", "domestic sounds"],
                         ["door wood knock", "mouse click", "keyboard typing", "door wood creaks", "can opening",
                          "washing machine", "vacuum cleaner", "clock alarm", "clock tick", "glass breaking",
                          "toilet flush"]),
    "a computer": (["computer sounds", "someone using a computer"], ["mouse click", "keyboard typing"]),
    "vehicles": (["traffic", "traffic noise", "a vehicle"], ["helicopter", "engine", "train", "airplane", "car horn",
                                                             "siren"]),
    "aircraft": (["an aircraft", "something flying overhead"], ["helicopter", "airplane"]),
    "machines": (["machinery", "a machine running", "motors"],
                 ["chainsaw", "engine", "vacuum cleaner", "washing machine", "helicopter"]),
    "music": (["a musical instrument", "musical instruments", "someone playing an instrument", "instrumental music"],
              ["cello", "flute", "oboe", "organ", "piano", "saxophone", "trumpet", "violin", "vibraphone", "drums",
               "a woman singing"]),
    "wind instruments": (["a wind instrument", "brass and woodwind"], ["flute", "oboe", "saxophone", "trumpet"]),
    "string instruments": (["a string instrument", "strings"], ["cello", "violin"]),
}


def sound_groups(labels: list[str] | tuple[str, ...]) -> dict[str, list[str]]:
    """The groups (name -> their classes present in `labels`) that hold at least two of `labels`."""
    present = set(labels)
    groups = {}
    for name, (_, members) in GROUPS.items():
        held = [label for label in members if label in present]
        if len(held) >= 2 and name not in present:
            groups[name] = held
    return groups


def group_phrasings(name: str) -> list[str]:
    """All query strings used for one group during training."""
    return _templated([name] + GROUPS[name][0])


def _templated(bases: list[str]) -> list[str]:
    """Every base in every template, once each, in order."""
    out = []
    for base in bases:
        for template in TEMPLATES:
            text = template.format(x=base)
            if text not in out:
                out.append(text)
    return out


def phrasings(label: str, captions: list[str] | tuple[str, ...] = ()) -> list[str]:
    """All query strings used for one label during training (label first, then variants); `captions` are the
    other captions its clips were given, which count as paraphrases."""
    return _templated([label] + PARAPHRASES.get(label, []) + [text for text in captions if text != label])
