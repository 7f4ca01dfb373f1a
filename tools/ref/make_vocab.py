#!/usr/bin/python3
"""Builds avlens' CHAIR vocabularies data/vocab/vggsound.txt and data/vocab/audioset.txt from the
VGGSounder class list and the AudioSet ontology (see docs/eval.md, "Vocabulary rules").

    /usr/bin/python3 tools/ref/make_vocab.py --data /work/shared/data --out data/vocab [--review]

Plain Python 3 (no packages). The C code never needs this script: its outputs are committed.

The object of a sound class is its sounding object, as a noun:
  1. A class name is split at ", " into alternatives ("pigeon, dove cooing").
  2. In each alternative, leading action words (words on -ing and a few verbs: "playing", "using",
     "opening or closing", "sharpen", "strike", ...) are dropped, then the noun run is the words up
     to the next -ing word or sound word ("bark", "noise", "impact", ...). Its last word is the
     head noun; "acoustic guitar" -> guitar. Human words (people, man, woman, child, baby, ...)
     become "person", like COCO's person class in CHAIR.
  3. The head noun is canonicalised through data/vocab/coco.txt, so that one object has one class
     name in all vocabularies ("plane" -> airplane).
  4. The class name and each alternative that holds the noun run become synonyms of the object,
     so that ground-truth labels ("playing table tennis") map to exactly that object. Synonyms
     whose last word ends in -ing are written label-only ("=dog barking", "=swimming"): they map
     ground-truth labels but are not looked for in captions.
  5. EXCEPTIONS below override the rules where they read the name wrongly (sports, weather, names
     without a noun, nouns that are not the sounding object); each says why in its key.
AudioSet: the same rules on the names of the nodes under Animal, Musical instrument, Vehicle and
the other "Sounds of things" subtrees and Natural sounds; nodes marked abstract or blacklist and
names that are only a sound (listed in SOUND_ONLY) are skipped.
"""
import argparse
import csv
import json
import os
import re
import sys

HUMAN = {"people", "person", "man", "men", "woman", "women", "male", "female", "child", "children",
         "kid", "kids", "baby", "babies", "boy", "girl", "human", "crowd", "choir", "orchestra"}

LEAD = {"or", "on", "with", "sharpen", "strike", "shot", "the", "a", "of", "tap", "reversing"}

SOUND = {"noise", "bounce", "impact", "chatter", "sounds", "sound", "speech", "laughter", "flyby",
         "bark", "barks", "cry", "crying", "call", "calls", "beeps", "hiccup", "chirrup", "clip-clop",
         "bow-wow", "pant-hooting", "acceleration", "explosion", "launch", "siren", "horn",
         "(siren)", "engine", "idling", "knocking", "starting", "squealing", "etc.", "etc", "and",
         "buzzing", "lowing", "lapping", "howl", "yip", "growl"}

# display name -> (object, [extra synonyms]); None = the class names no sounding object we keep.
EXCEPTIONS = {
    # sirens and horns: the vehicle or device that sounds
    "ambulance siren": ("ambulance", []),
    "civil defense siren": ("siren", ["civil defense siren", "air raid siren"]),
    "fire truck siren": ("truck", ["fire truck"]),
    "police car (siren)": ("car", ["police car"]),
    "vehicle horn, car horn, honking": ("car", ["car horn", "vehicle horn"]),
    "air horn": ("horn", ["air horn"]),
    "train horning": ("train", []),
    "foghorn": ("foghorn", ["fog horn"]),
    # engines are heard from their vehicle
    "engine accelerating, revving, vroom": ("engine", []),
    "car engine knocking": ("car", []),
    "car engine idling": ("car", []),
    "car engine starting": ("car", []),
    "car passing by": ("car", []),
    "skidding": ("car", []),
    "missile launch": ("missile", ["rocket"]),
    "volcano explosion": ("volcano", []),
    # sports: the ball game names its ball, the others their gear or the player
    "basketball bounce": ("sports ball", ["basketball"]),
    "playing squash": ("sports ball", ["squash ball"]),
    "playing table tennis": ("table tennis", ["ping pong", "table tennis ball", "ping pong ball"]),
    "playing badminton": ("badminton", ["shuttlecock"]),
    "playing volleyball": ("sports ball", ["volleyball"]),
    "playing tennis": ("tennis racket", ["tennis"]),
    "playing hockey": ("hockey stick", ["hockey", "ice hockey", "puck"]),
    "playing lacrosse": ("lacrosse stick", ["lacrosse"]),
    "playing darts": ("dart", ["darts", "dartboard"]),
    "golf driving": ("golf club", ["golf"]),
    "shot football": ("sports ball", ["football"]),
    "striking bowling": ("bowling ball", ["bowling", "bowling pin"]),
    "bowling impact": ("bowling ball", ["bowling", "bowling pin"]),
    "striking pool": ("pool table", ["billiards", "billiard ball", "pool cue"]),
    "skiing": ("skis", ["skiing"]),
    "skateboarding": ("skateboard", ["skateboarding"]),
    "rope skipping": ("jump rope", ["skipping rope", "rope skipping"]),
    "bouncing on trampoline": ("trampoline", []),
    "tap dancing": ("person", ["tap dancer", "tap dancing"]),
    "scuba diving": ("person", ["scuba diver", "scuba diving"]),
    "swimming": ("person", ["swimming"]),
    "sailing": ("boat", ["sailing"]),
    "people running": ("person", ["people running"]),
    "people marching": ("person", ["people marching"]),
    "footsteps on snow": ("person", ["footsteps"]),
    # voices: the person
    "beat boxing": ("person", ["beatboxer", "beat boxing", "beatboxing"]),
    "rapping": ("person", ["rapper", "rapping"]),
    "yodelling": ("person", ["yodeller", "yodelling", "yodeling"]),
    "singing choir": ("person", ["choir", "singing choir"]),
    "people battle cry": ("person", ["people battle cry"]),
    "lip smacking": ("person", ["lip smacking"]),
    "heart sounds, heartbeat": ("heart", ["heartbeat"]),
    "people nose blowing": ("person", ["people nose blowing"]),
    "people finger snapping": ("person", ["people finger snapping"]),
    "people eating noodle": ("person", ["people eating noodle"]),
    "people eating crisps": ("person", ["people eating crisps"]),
    "people eating apple": ("person", ["people eating apple"]),
    "eating with cutlery": ("cutlery", ["eating with cutlery"]),
    # weather and water: nouns of the phenomenon (a caption that names one is a mention)
    "wind noise": ("wind", []),
    "wind rustling leaves": ("wind", ["wind rustling leaves"]),
    "raining": ("rain", ["raining", "rainfall"]),
    "hail": ("hail", ["hailstorm", "hailstone"]),
    "thunder": ("thunder", ["thunderstorm", "lightning"]),
    "tornado roaring": ("tornado", ["twister"]),
    "sea waves": ("wave", ["sea waves", "ocean waves", "surf"]),
    "ocean burbling": ("ocean", ["sea"]),
    "stream burbling": ("stream", ["creek", "brook", "river"]),
    "waterfall burbling": ("waterfall", []),
    "splashing water": ("water", ["splashing water"]),
    "squishing water": ("water", ["squishing water"]),
    "sloshing water": ("water", ["sloshing water"]),
    "spraying water": ("water", ["spraying water"]),
    "pumping water": ("water pump", ["pumping water"]),
    "underwater bubbling": ("water", ["underwater bubbling", "bubbles"]),
    "fire crackling": ("fire", ["campfire", "bonfire", "flame"]),
    "ice cracking": ("ice", []),
    # tools and machines: the machine, not the material
    "chainsawing trees": ("chainsaw", ["chainsawing trees", "chain saw"]),
    "chopping wood": ("axe", ["chopping wood", "hatchet"]),
    "chopping food": ("knife", ["chopping food", "cutting board"]),
    "planing timber": ("hand plane", ["planing timber", "wood plane"]),
    "hammering nails": ("hammer", ["hammering nails"]),
    "woodpecker pecking tree": ("bird", ["woodpecker"]),
    "sharpen knife": ("knife", ["sharpen knife", "knife sharpener"]),
    "cutting hair with electric trimmers": ("hair clipper", ["electric trimmer", "hair trimmer", "clipper"]),
    "electric shaver, electric razor shaving": ("electric shaver", ["electric razor", "shaver", "razor"]),
    "lawn mowing": ("lawn mower", ["lawnmower", "mower", "lawn mowing"]),
    "tractor digging": ("tractor", ["excavator", "digger"]),
    "vacuum cleaner cleaning floors": ("vacuum cleaner", ["vacuum", "hoover"]),
    "using sewing machines": ("sewing machine", []),
    "typing on typewriter": ("typewriter", []),
    "typing on computer keyboard": ("keyboard", ["computer keyboard"]),
    "mouse clicking": ("mouse", ["computer mouse", "mouse clicking"]),
    "writing on blackboard with chalk": ("blackboard", ["chalkboard", "chalk"]),
    "ripping paper": ("paper", ["ripping paper"]),
    "plastic bottle crushing": ("bottle", ["plastic bottle"]),
    "popping popcorn": ("popcorn", ["popcorn machine"]),
    "forging swords": ("sword", ["forging swords", "anvil"]),
    "arc welding": ("welder", ["welding torch", "arc welding", "welding"]),
    "blowtorch igniting": ("blowtorch", ["blow torch"]),
    "strike lighter": ("lighter", ["cigarette lighter"]),
    "lighting firecrackers": ("firecracker", ["lighting firecrackers"]),
    "fireworks banging": ("firework", []),
    "machine gun shooting": ("gun", ["machine gun"]),
    "cap gun shooting": ("gun", ["cap gun", "toy gun"]),
    "firing muskets": ("gun", ["musket", "rifle"]),
    "firing cannon": ("cannon", []),
    "disc scratching": ("turntable", ["record player", "disc scratching"]),
    "reversing beeps": ("truck", ["reversing beeps", "reversing truck"]),
    "smoke detector beeping": ("smoke detector", ["smoke alarm", "fire alarm"]),
    "alarm clock ringing": ("clock", ["alarm clock"]),
    "telephone bell ringing": ("cell phone", ["telephone"]),
    "cell phone buzzing": ("cell phone", []),
    "air conditioning noise": ("air conditioner", ["air conditioning", "ac unit"]),
    "running electric fan": ("fan", ["electric fan"]),
    "bathroom ventilation fan running": ("fan", ["ventilation fan", "exhaust fan"]),
    "eletric blender running": ("blender", ["electric blender"]),
    "electric grinder grinding": ("grinder", ["electric grinder", "angle grinder"]),
    "hedge trimmer running": ("hedge trimmer", []),
    "hair dryer drying": ("hair drier", ["hair dryer"]),
    "lathe spinning": ("lathe", []),
    "printer printing": ("printer", []),
    "slot machine": ("slot machine", []),
    "toilet flushing": ("toilet", []),
    "opening or closing car doors": ("car", ["car door"]),
    "opening or closing car electric windows": ("car", ["car window"]),
    "opening or closing drawers": ("drawer", []),
    "cupboard opening or closing": ("cupboard", ["cabinet"]),
    "sliding door": ("door", ["sliding door"]),
    "door slamming": ("door", []),
    "wind chime": ("wind chime", []),
    "singing bowl": ("singing bowl", []),
    "church bell ringing": ("bell", ["church bell"]),
    "cattle, bovinae cowbell": ("cow", ["cattle", "cowbell"]),
    "roller coaster running": ("roller coaster", []),
    "ice cream truck, ice cream van": ("truck", ["ice cream truck", "ice cream van"]),
    "railroad car, train wagon": ("train", ["railroad car", "train wagon"]),
    "train wheels squealing": ("train", []),
    "train whistling": ("train", ["train whistle"]),
    "subway, metro, underground": ("train", ["subway", "metro", "underground train"]),
    "race car, auto racing": ("car", ["race car", "auto racing"]),
    "driving buses": ("bus", []),
    "driving motorcycle": ("motorcycle", []),
    "driving snowmobile": ("snowmobile", []),
    "motorboat, speedboat acceleration": ("boat", ["motorboat", "speedboat"]),
    "rowboat, canoe, kayak rowing": ("boat", ["rowboat", "canoe", "kayak"]),
    "airplane flyby": ("airplane", []),
    "police radio chatter": ("radio", ["police radio"]),
    "playing tuning fork": ("tuning fork", []),
    "playing washboard": ("washboard", []),
    "playing drum kit": ("drum", ["drum kit", "drum set", "drums"]),
    "playing snare drum": ("drum", ["snare drum", "snare"]),
    "playing bass drum": ("drum", ["bass drum", "kick drum"]),
    "playing steel guitar, slide guitar": ("guitar", ["steel guitar", "slide guitar"]),
    "playing hammond organ": ("organ", ["hammond organ"]),
    "playing electronic organ": ("organ", ["electronic organ"]),
    "playing marimba, xylophone": ("marimba", ["xylophone"]),
    "playing violin, fiddle": ("violin", ["fiddle"]),
    "playing timpani": ("timpani", ["kettledrum", "tympani"]),
    "playing tympani": ("timpani", ["tympani"]),
    "tapping guitar": ("guitar", ["tapping guitar"]),
    "playing french horn": ("french horn", []),
    "playing double bass": ("double bass", ["contrabass", "upright bass"]),
    "people belly laughing": ("person", ["people belly laughing"]),
    # animals whose name needs help
    "alligators, crocodiles hissing": ("crocodile", ["alligator"]),
    "pigeon, dove cooing": ("bird", ["pigeon", "dove"]),
    "bee, wasp, etc. buzzing": ("bee", ["wasp", "hornet", "bumblebee"]),
    "fly, housefly buzzing": ("fly", ["housefly", "house fly"]),
    "donkey, ass braying": ("horse", ["donkey"]),
    "dinosaurs bellowing": ("dinosaur", []),
    "black capped chickadee calling": ("bird", ["chickadee", "black capped chickadee"]),
    "baltimore oriole calling": ("bird", ["oriole", "baltimore oriole"]),
    "barn swallow calling": ("bird", ["swallow", "barn swallow"]),
    "wood thrush calling": ("bird", ["thrush", "wood thrush"]),
    "cuckoo bird calling": ("bird", ["cuckoo"]),
    "mynah bird singing": ("bird", ["mynah bird", "mynah"]),
    "bird wings flapping": ("bird", ["bird wings"]),
    "chimpanzee pant-hooting": ("chimpanzee", ["chimp", "ape"]),
    "gibbon howling": ("gibbon", ["ape"]),
    "elk bugling": ("elk", ["deer", "moose"]),
    "sea lion barking": ("sea lion", []),
    "horse clip-clop": ("horse", []),
    "dog bow-wow": ("dog", []),
    "baby laughter": ("person", ["baby laughter"]),
}

# Canonical names shared by every vocabulary: a noun (after the rules) -> the class it belongs to.
# Birds and livestock follow COCO's classes so that detections and labels agree.
CANON = {"chicken": "bird", "crow": "bird", "pheasant": "bird", "canary": "bird", "francolin": "bird",
         "turkey": "bird", "duck": "bird", "goose": "bird", "owl": "bird", "eagle": "bird",
         "magpie": "bird", "warbler": "bird", "parrot": "bird", "penguin": "bird", "cattle": "cow",
         "bull": "cow", "goat": "sheep", "bus": "bus", "orchestra": "person", "crowd": "person",
         "choir": "person"}


def singular(w):
    """A light singulariser, enough to match coco.txt entries; the C loader normalises again."""
    irregular = {"people": "person", "men": "man", "women": "woman", "children": "child", "mice": "mouse",
                 "geese": "goose", "wolves": "wolf", "knives": "knife", "leaves": "leaf", "teeth": "tooth",
                 "feet": "foot", "babies": "baby"}
    if w in irregular:
        return irregular[w]
    if w in {"species", "series", "news", "lens", "scissors", "pants", "jeans", "clothes", "shorts", "aircraft",
             "headphones", "goggles", "flies", "watches", "canvas", "atlas", "christmas", "gymnastics"}:
        return w
    if len(w) <= 3 or w.endswith(("ss", "us", "is")) or not w.endswith("s"):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "zzes", "shes", "ches")):
        return w[:-2]
    return w[:-1]


def norm(phrase):
    return " ".join(singular(t) for t in re.findall(r"[a-z0-9]+", phrase.lower()))


def read_coco(path):
    """coco.txt: normalised phrase -> canonical class."""
    m = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line or line.startswith("#") or line.startswith("@"):
            continue
        entries = [norm(e) for e in line.split(",")]
        for e in entries:
            m.setdefault(e, entries[0])
    return m


def object_of(name, coco):
    """(object, synonyms) of a class name by the rules, or None when no noun is found."""
    alts = [a.strip() for a in name.split(", ")]
    obj, run_of = None, {}
    for a in alts:
        words = a.replace("(", " ").replace(")", " ").split()
        while words and (words[0].endswith("ing") or words[0] in LEAD):
            words.pop(0)
        run = []
        for w in words:
            if w.endswith("ing") or w in SOUND:
                break
            run.append(w)
        if run:
            run_of[a] = " ".join(run)
            if obj is None:
                obj = run[-1]
    if obj is None:
        return None
    syns = [name if ", " not in name else None] + list(run_of.keys()) + list(run_of.values())
    return canon(obj, coco), [s for s in syns if s]


def canon(noun, coco):
    n = norm(noun)
    if n in HUMAN or noun in HUMAN:
        return "person"
    if n in CANON:
        return CANON[n]
    return coco.get(n, n)


def label_only(phrase):
    """A phrase whose last word is on -ing ("dog barking", "swimming") names a sound or an action:
    it maps ground-truth labels but is not looked for in captions ("a dog swimming" must not
    mention a person)."""
    words = re.findall(r"[a-z0-9]+", phrase.lower())
    return "=" + phrase if words and words[-1].endswith("ing") else phrase


class Vocab:
    """Classes in order, each with its synonyms; a phrase belongs to the first class that takes it."""

    def __init__(self, coco):
        self.coco = coco
        self.order, self.syn, self.owner = [], {}, {}

    def add(self, obj, synonyms):
        obj = canon(obj, self.coco) if obj not in self.coco.values() else obj
        if obj not in self.syn:
            self.order.append(obj)
            self.syn[obj] = []
            self.owner.setdefault(norm(obj), obj)
        for s in synonyms:
            k = norm(s)
            if not k or self.owner.get(k, obj) != obj:
                continue  # already another class's phrase: the first one keeps it
            self.owner[k] = obj
            if k != norm(obj) and s not in self.syn[obj]:
                self.syn[obj].append(s)

    def write(self, path, header, animals=()):
        with open(path, "w", encoding="utf-8") as f:
            f.write(header)
            for o in self.order:
                f.write(", ".join([o] + [label_only(s) for s in self.syn[o] if "," not in s]) + "\n")
            marked = [o for o in self.order if o in animals]
            if marked:
                f.write("@animal " + ", ".join(marked) + "\n")


def build_vggsound(classes_csv, coco, review):
    v = Vocab(coco)
    names = [r["display_name"] for r in csv.DictReader(open(classes_csv, encoding="utf-8"))]
    for name in names:
        if name in EXCEPTIONS:
            obj, extra = EXCEPTIONS[name]
            syns = ([name] if ", " not in name else []) + extra
            how = "exception"
        else:
            got = object_of(name, coco)
            if got is None:
                print(f"make_vocab: no object for VGGSound class '{name}': add it to EXCEPTIONS", file=sys.stderr)
                sys.exit(1)
            obj, syns = got
            how = "rule"
        v.add(obj, syns)
        if review:
            print(f"vggsound\t{how}\t{name}\t-> {obj}")
    return v, len(names)


# AudioSet subtrees whose nodes name sounding things; their descendants are read with the rules.
AUDIOSET_ROOTS = {"/m/0jbk": "Animal", "/m/04szw": "Musical instrument", "/t/dd00041": "Sounds of things",
                  "/m/059j3w": "Natural sounds"}
# AudioSet names that are only a sound, an activity or a category, never one object (checked by
# hand against the ontology; lower-case).
AS_SKIP = {
    "animal", "musical instrument", "domestic animals, pets", "livestock, farm animals, working animals",
    "wild animals", "plucked string instrument", "keyboard (musical)", "percussion", "brass instrument",
    "bowed string instrument", "wind instrument, woodwind instrument", "scratching (performance technique)",
    "vehicle", "alarm", "mechanisms", "tools", "explosion", "wood", "glass", "liquid", "motor vehicle (road)",
    "rail transport", "non-motorized land vehicle", "light engine (high frequency)",
    "medium engine (mid frequency)", "heavy engine (low frequency)", "engine starting", "idling",
    "accelerating, revving, vroom", "chopping (food)", "frying (food)", "typing", "writing", "burst, pop",
    "boom", "chop", "splinter", "crack", "snap", "chink, clink", "shatter", "splash, splatter", "squish", "drip",
    "pour", "fill (with liquid)", "spray", "stir", "boiling", "howl (wind)", "rustling leaves",
    "wind noise (microphone)", "gurgling", "crackle", "bark", "yip", "howl", "bow-wow", "growling",
    "whimper (dog)", "purr", "meow", "hiss", "caterwaul", "clip-clop", "neigh, whinny", "snort (horse)", "nicker",
    "moo", "oink", "bleat", "roar", "bird vocalization, bird call, bird song", "bird flight, flapping wings",
    "croak", "rattle", "tapping (guitar technique)", "strum", "sampler", "pizzicato", "traffic noise, roadway noise",
    "slam", "knock", "tap", "squeak", "telephone dialing, dtmf", "dial tone", "busy signal", "ding-dong", "toot",
    "tick", "tick-tock", "slosh", "trickle, dribble", "gush", "whoosh, swoosh, swish", "thump, thud", "wobble",
    "effects unit", "cluck", "crowing, cock-a-doodle-doo", "gobble", "quack", "honk", "chirp, tweet", "squawk",
    "coo", "caw", "hoot", "buzz", "rimshot", "drum roll", "skidding", "tire squeal", "thunk", "clunk",
    "chorus effect", "filing (rasp)", "sanding", "shuffling cards", "whistle", "steam", "string section",
}

# AudioSet names the rule reads wrongly: name (lower-case) -> (object, synonyms).
AS_EXCEPTIONS = {
    "orchestra": ("person", ["orchestra"]), "choir": ("person", ["choir"]),
    "thunderstorm": ("thunder", ["thunderstorm"]), "fowl": ("bird", ["fowl"]),
    "whale vocalization": ("whale", []), "roaring cats (lions, tigers)": ("lion", ["roaring cat", "big cat"]),
    "canidae, dogs, wolves": ("wolf", ["canidae"]), "rodents, rats, mice": ("rat", ["rodent"]),
    "dishes, pots, and pans": ("pot", ["pan", "pots and pans", "frying pan", "saucepan"]),
    "sink (filling or washing)": ("sink", []), "bathtub (filling or washing)": ("bathtub", ["bath tub", "tub"]),
    "toilet flush": ("toilet", []), "keys jangling": ("key", ["keys", "keychain"]),
    "coin (dropping)": ("coin", []), "fire alarm": ("smoke detector", ["fire alarm"]),
    "car alarm": ("car", ["car alarm"]), "gears": ("gear", []), "pulleys": ("pulley", []),
    "mechanical fan": ("fan", ["mechanical fan"]), "air conditioning": ("air conditioner", ["air conditioning"]),
    "gunshot, gunfire": ("gun", ["gunshot", "gunfire"]), "fireworks": ("firework", []),
    "eruption": ("volcano", ["eruption"]), "pump (liquid)": ("water pump", ["pump"]),
    "basketball bounce": ("sports ball", ["basketball"]), "wildfire": ("fire", ["wildfire"]),
    "raindrop": ("rain", ["raindrop"]), "rain on surface": ("rain", []), "waves, surf": ("wave", ["surf"]),
    "train wheels squealing": ("train", []), "aircraft engine": ("airplane", ["aircraft engine"]),
    "dental drill, dentist's drill": ("drill", ["dental drill", "dentist's drill"]),
    "telephone bell ringing": ("cell phone", ["telephone"]), "ringtone": ("cell phone", ["ringtone"]),
    "cellphone buzz, vibrating alert": ("cell phone", ["cellphone"]),
    "police car (siren)": ("car", ["police car"]), "ambulance (siren)": ("ambulance", []),
    "fire engine, fire truck (siren)": ("truck", ["fire engine", "fire truck"]),
    "civil defense siren": ("siren", ["civil defense siren"]), "steam whistle": ("whistle", ["steam whistle"]),
    "single-lens reflex camera": ("camera", ["slr camera", "single lens reflex camera"]),
    "machine gun": ("gun", ["machine gun"]), "artillery fire": ("cannon", ["artillery"]),
    "cap gun": ("gun", ["cap gun"]), "power windows, electric windows": ("car", ["power window"]),
    "car passing by": ("car", []), "race car, auto racing": ("car", ["race car"]),
    "air brake": ("truck", ["air brake"]), "reversing beeps": ("truck", []),
    "train whistle": ("train", ["train whistle"]), "train horn": ("train", ["train horn"]),
    "air horn, truck horn": ("horn", ["air horn", "truck horn"]), "electric toothbrush": ("toothbrush", ["electric toothbrush"]),
    "hi-hat": ("cymbal", ["hi hat", "hihat"]), "tubular bells": ("bell", ["tubular bell"]),
    "chime": ("bell", ["chime"]), "change ringing (campanology)": ("bell", ["bell ringing"]),
    "jingle bell": ("bell", ["jingle bell", "sleigh bell"]), "bicycle bell": ("bell", ["bicycle bell"]),
    "church bell": ("bell", ["church bell"]), "kettle whistle": ("kettle", ["tea kettle"]),
    "water tap, faucet": ("faucet", ["water tap"]), "cupboard open or close": ("cupboard", ["cabinet"]),
    "drawer open or close": ("drawer", []), "sawing": ("saw", ["handsaw", "hand saw"]),
    "emergency vehicle": ("ambulance", ["emergency vehicle"]), "french horn": ("french horn", []),
    "double bass": ("double bass", ["contrabass", "upright bass"]), "propeller, airscrew": ("propeller", []),
    "ratchet, pawl": ("ratchet", []), "velcro, hook and loop fastener": ("velcro", []),
    "packing tape, duct tape": ("tape", ["packing tape", "duct tape"]), "arrow": ("arrow", ["bow and arrow"]),
}


def build_audioset(onto_json, coco, vgg, review):
    nodes = {n["id"]: n for n in json.load(open(onto_json, encoding="utf-8"))}
    v = Vocab(coco)
    seen, taken, skipped = set(), 0, 0
    stack = list(AUDIOSET_ROOTS)
    order = []
    while stack:
        i = stack.pop(0)
        if i in seen or i not in nodes:
            continue
        seen.add(i)
        order.append(i)
        stack.extend(nodes[i]["child_ids"])
    for i in order:
        n = nodes[i]
        if i in AUDIOSET_ROOTS or set(n["restrictions"]) & {"abstract", "blacklist"}:
            continue
        name = n["name"].lower()
        if name in AS_SKIP:
            skipped += 1
            if review:
                print(f"audioset\tskip\t{n['name']}")
            continue
        alts = [re.sub(r"\s*\(.*?\)", "", a).strip() for a in name.split(", ")]
        if name in AS_EXCEPTIONS:
            obj, syns = AS_EXCEPTIONS[name]
            syns = syns + [a for a in alts if norm(a) not in vgg and norm(a) not in coco]
            how = "exception"
        else:
            key = norm(alts[0])
            # a name that is already a phrase of VGGSound or COCO keeps that class
            obj = vgg.get(key) or coco.get(key) or canon(alts[0].split()[-1], coco)
            syns = alts
            how = "rule"
        v.add(obj, syns)
        taken += 1
        if review:
            print(f"audioset\t{how}\t{n['name']}\t-> {obj}")
    return v, taken, skipped


HEADER = """# avlens CHAIR vocabulary: {what}, version 1.
# GENERATED by tools/ref/make_vocab.py from {src}; do not edit by hand, change the script's rules
# or EXCEPTIONS and regenerate. Format in docs/eval.md: "canonical, synonym, ..." per line.
# {count}
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="/work/shared/data")
    ap.add_argument("--out", default="data/vocab")
    ap.add_argument("--review", action="store_true", help="print every class and the object it got")
    a = ap.parse_args()
    coco = read_coco(os.path.join(a.out, "coco.txt"))
    vg, n = build_vggsound(os.path.join(a.data, "vggsounder-classes.csv"), coco, a.review)
    vg.write(os.path.join(a.out, "vggsound.txt"),
             HEADER.format(what="objects of the 310 VGGSound / VGGSounder classes", src="vggsounder-classes.csv",
                           count=f"{n} classes -> {len(vg.order)} objects."), ANIMALS_VGG)
    vgg_map = {k: o for k, o in vg.owner.items()}
    au, taken, skipped = build_audioset(os.path.join(a.data, "audioset-ontology.json"), coco, vgg_map, a.review)
    au.write(os.path.join(a.out, "audioset.txt"),
             HEADER.format(what="objects named by the AudioSet ontology", src="audioset-ontology.json",
                           count=f"{taken} nodes taken, {skipped} skipped (sound-only names) -> {len(au.order)} objects."),
             ANIMALS_VGG | {"wolf", "rat", "insect"})


ANIMALS_VGG = {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "lion", "frog", "crocodile", "bee",
               "snake", "pig", "fox", "coyote", "whale", "zebra", "goat", "gibbon", "chimpanzee", "elk",
               "otter", "cheetah", "chipmunk", "chinchilla", "ferret", "mouse", "sea lion", "penguin",
               "mosquito", "cricket", "fly", "owl", "dinosaur"}

if __name__ == "__main__":
    main()
