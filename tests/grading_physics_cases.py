"""Physics answers written in the styles real models use, each labelled by careful reading with a one-line reason.

The original's detail files hold no physics answers (only RussianMath runs survive in ../shared/upstream-data), so
these answers were written for this set: units in words, Russian decimal commas and scientific notation
(``4{,}2 \\cdot 10^{5}``, ``3,2·10⁵``), SI prefixes, rounded values, a unit stated only in the sentence before a
bare number, magnitudes (``150 млн км``). References are in the form of datasets/sample-physics.jsonl.

Labels: written and labelled by the developer who extended the grader for issue 17, before running the grader on
them, so not blind. ``c``: the final answer states the reference's quantity within the benchmark's physics rule
(1% relative tolerance unless ``tolerance`` is given); ``i``: it does not, or there is no final answer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PhysicsCase:
    response: str
    reference: str
    label: str  # "c" correct, "i" incorrect
    reason: str
    tolerance: float | None = None


def _rows(rows: list[tuple]) -> list[PhysicsCase]:
    return [PhysicsCase(*row) for row in rows]


PHYSICS_CASES = _rows(
    [
        # heights and lengths
        (
            "По закону сохранения энергии $h = \\frac{v_0^2}{2g} = \\frac{400}{20} = 20$ м.\n\n**Ответ:** 20 метров.",
            "20 м",
            "c",
            "units in words, same height",
        ),
        ("Ответ: $h = 20\\,\\text{м}$", "20 м", "c", "named quantity with a LaTeX unit"),
        ("Ответ: 2000 см", "20 м", "c", "the same height in centimetres"),
        ("Ответ: 0,02 км", "20 м", "c", "the same height in kilometres, decimal comma"),
        ("$h = \\frac{v_0^2}{g} = 40$ м\n\nОтвет: 40 м", "20 м", "i", "forgot the factor 1/2: twice the height"),
        ("Ответ: 0,15 м", "15 см", "c", "focal distance in metres"),
        ("Ответ: 15 сантиметров", "15 см", "c", "centimetres in words"),
        ("Ответ: 15 мм", "15 см", "i", "wrong prefix: ten times smaller"),
        (
            "Дальность полёта $L = v_0 t = 15 \\cdot 2 = 30$ м.\n\nОтвет: \\boxed{30 \\text{ метров}}",
            "30 м",
            "c",
            "boxed, unit in words",
        ),
        ("Ответ: 22,5 м", "22.5 м", "c", "decimal comma"),
        ("Ответ: ≈ 23 м", "22.5 м", "i", "rounded to two digits: 2.2% off, beyond 1%"),
        ("Ответ: 0,25 мм", "2.5·10^{-4} м", "c", "millimetres against scientific notation in metres"),
        ("Ответ: 150 млн км", "1.5 \\cdot 10^{11} м", "c", "magnitude abbreviation with a prefixed unit"),
        ("Ответ: $1{,}5 \\cdot 10^{8}$ км", "1.5 \\cdot 10^{11} м", "c", "scientific notation in kilometres"),
        ("Ответ: 500 нанометров", "5·10^{-7} м", "c", "prefixed unit in words"),
        # speeds and accelerations
        (
            "Средняя скорость $v = \\frac{2 v_1 v_2}{v_1 + v_2} = 72$ км/ч.\n\n\\boxed{72 \\text{ км/ч}}",
            "72 км/ч",
            "c",
            "boxed with the unit",
        ),
        ("Ответ: 20 м/с", "72 км/ч", "c", "the same speed in m/s"),
        ("Ответ: 75 км/ч", "72 км/ч", "i", "arithmetic mean of the speeds, 4% off"),
        ("**Ответ:** $v = 30$ м/с", "30 м/с", "c", "bold marker, named quantity"),
        ("Ответ: 108 километров в час", "30 м/с", "c", "km/h in words"),
        ("Ответ: 90 км/ч", "25 м/с", "c", "km/h for m/s"),
        ("Ответ: \\boxed{6\\ \\text{м/с}}", "6 м/с", "c", "boxed with a LaTeX space"),
        ("Ответ: 3 метра в секунду", "3 м/с", "c", "m/s in words"),
        ("Ответ: $\\approx 2{,}99$ м/с", "3 м/с", "c", "rounded, 0.3% off"),
        ("Ответ: 2,9 м/с", "3 м/с", "i", "3.3% off"),
        ("Ответ: 0,34 км/с", "340 м/с", "c", "km/s with a decimal comma"),
        ("Ответ: $v \\approx 7{,}9$ км/с", "7.91 км/с", "c", "rounded, 0.1% off"),
        ("Ответ: 8 км/с", "7.91 км/с", "i", "rounded to one digit: 1.1% off"),
        ("Ответ: 18 м/с^2", "18 м/с²", "c", "caret instead of a superscript"),
        ("Ответ: 18 метров в секунду в квадрате", "18 м/с²", "c", "acceleration in words"),
        ("Ответ: 18 м/с", "18 м/с²", "i", "a speed, not an acceleration"),
        ("Ответ: примерно 9,8 м/с²", "9.81 м/с^2", "c", "rounded, 0.1% off"),
        ("Ответ: 10 м/с²", "9.81 м/с^2", "i", "g rounded to 10: 1.9% off"),
        ("Ответ: $3 \\cdot 10^{8}$", "3·10^8 м/с", "c", "bare number in SI units"),
        # forces, pressures, energies
        ("Ответ: 6 Н", "6 Н", "c", "same force"),
        ("Ответ: 6 ньютонов", "6 Н", "c", "newtons in words"),
        ("Ответ: 0,6 Н", "6 Н", "i", "ten times smaller"),
        ("Ответ: $F_A = 2$ Н", "2 Н", "c", "named force with a subscript"),
        ("Ответ: 2 килоньютона", "2000 Н", "c", "kilonewtons in words"),
        ("Ответ: 1,6 кН", "1600 Н", "c", "kilonewtons with a decimal comma"),
        ("Ответ: $5,0 \\cdot 10^{3}$ Н", "5 кН", "c", "scientific notation with a trailing zero"),
        ("Ответ: $5 \\cdot 10^{3}$ кг", "5 кН", "i", "a mass, not a force"),
        ("Ответ: $4 \\cdot 10^{-1}$ Н", "0.4 Н", "c", "negative power of ten"),
        ("Ответ: 400 мН", "0.4 Н", "c", "millinewtons"),
        ("Ответ: 0,04 Н", "0.4 Н", "i", "ten times smaller"),
        ("Ответ: 2 \\cdot 10^{4}\\ \\text{Па}", "20000 Па", "c", "cdot and a LaTeX unit"),
        ("Ответ: 20 кПа", "20000 Па", "c", "kilopascals"),
        ("Ответ: 2·10^3 Па", "20000 Па", "i", "wrong power of ten"),
        ("Ответ: $5 \\cdot 10^4$ Па", "50 кПа", "c", "pascals in scientific notation"),
        ("Ответ: 0,5 атм", "50 кПа", "i", "0.5 atm is 50.7 kPa, 1.3% off"),
        ("Ответ: 4·10⁵ Па", "400 кПа", "c", "unicode superscript exponent"),
        ("Ответ: 0,4 МПа", "400 кПа", "c", "megapascals"),
        ("Ответ: 1,2 мегапаскаля", "1.2 МПа", "c", "megapascals in words"),
        ("Ответ: $3{,}2\\cdot10^{5}$ Па", "320 кПа", "c", "Russian scientific notation"),
        ("Ответ: 3,2·10^{-5} Па", "320 кПа", "i", "sign of the exponent lost"),
        ("Ответ: 0,5 Дж", "0.5 Дж", "c", "decimal comma"),
        ("Ответ: $E_p = 5 \\cdot 10^{-1}$ Дж", "0.5 Дж", "c", "scientific notation"),
        ("Ответ: 500 мДж", "0.5 Дж", "c", "millijoules"),
        (
            "$E = \\frac{k x^2}{2} = \\frac{400 \\cdot 25}{2} = 5000$\n\nОтвет: 5000 Дж",
            "0.5 Дж",
            "i",
            "centimetres not converted",
        ),
        ("Ответ: $Q = 4{,}2 \\cdot 10^{5}$ Дж", "420 кДж", "c", "Russian scientific notation"),
        ("Ответ: 4,2·10⁵ Дж", "420 кДж", "c", "middle dot and superscript"),
        ("Ответ: 0,42 МДж", "420 кДж", "c", "megajoules"),
        ("Ответ: 420 Дж", "420 кДж", "i", "the kilo is lost"),
        ("Ответ: 9,9 \\cdot 10^{5} Дж", "990 кДж", "c", "joules in scientific notation"),
        ("Ответ: 990 000 Дж", "990 кДж", "c", "thousands separated by a space"),
        ("Ответ: 99 кДж", "990 кДж", "i", "ten times smaller"),
        ("Ответ: $2{,}4 \\times 10^{5}$ Дж", "240 кДж", "c", "times sign"),
        ("Ответ: 2,4·10^5 кДж", "240 кДж", "i", "prefix and power of ten both applied"),
        ("Ответ: 0,3 кДж", "300 Дж", "c", "kilojoules"),
        ("Ответ: 700 Дж", "300 Дж", "i", "added instead of subtracted"),
        ("Ответ: $W = 1\\cdot 10^{-1}$ Дж", "0.1 Дж", "c", "named work in scientific notation"),
        ("Ответ: 173 Дж", "100 Дж", "i", "cos 30° instead of cos 60°"),
        # electricity
        ("Общее сопротивление цепи $R = 6$ Ом.\n\nОтвет: 6", "6 Ом", "c", "bare number, unit in the sentence before"),
        ("Ответ: 6 \\Omega", "6 Ом", "c", "Omega symbol"),
        ("Ответ: 2000 мА", "2 А", "c", "milliamperes"),
        ("Ответ: 2,4 А", "2 А", "i", "internal resistance ignored"),
        ("Ответ: 7.5 вольт", "7.5 В", "c", "volts in words"),
        ("Ответ: 8 В", "7.5 В", "i", "6.7% off"),
        ("Ответ: 10 ампер", "10 А", "c", "amperes in words"),
        (
            "Таким образом, сила тока равна 250 мА.\n\nОтвет: 250",
            "0.25 А",
            "c",
            "bare number, milliamperes in the sentence before",
        ),
        (
            "Таким образом, сила тока равна 0,25 А.\n\nОтвет: 250",
            "0.25 А",
            "i",
            "the sentence before states another number",
        ),
        ("Ответ: $1{,}6 \\cdot 10^{-19}$ Кл", "1.6·10^{-19} Кл", "c", "elementary charge in Russian notation"),
        ("Ответ: 2 мкКл", "2·10^{-6} Кл", "c", "microcoulombs"),
        ("Ответ: 2 мКл", "2·10^{-6} Кл", "i", "milli instead of micro"),
        ("Ответ: 50 герц", "50 Гц", "c", "hertz in words"),
        ("Ответ: 3 киловатта", "3 кВт", "c", "kilowatts in words"),
        ("Ответ: 3 Вт", "3 кВт", "i", "the kilo is lost"),
        # heat, time, other
        ("Ответ: 450 К", "450 К", "c", "same temperature"),
        ("Ответ: 177 °C", "450 К", "c", "the same temperature in Celsius"),
        ("Ответ: 177 К", "450 К", "i", "a Celsius value with kelvins"),
        ("Ответ: 40%", "40 %", "c", "percent sign without a space"),
        ("Ответ: 0,4", "40 %", "c", "efficiency as a fraction"),
        ("Ответ: 60%", "40 %", "i", "the lost fraction, not the efficiency"),
        ("Ответ: $5 \\cdot 10^{-3}$ м^3", "5 л", "c", "cubic metres for litres"),
        ("Ответ: 5 литров", "5 л", "c", "litres in words"),
        ("Ответ: $5 \\cdot 10^{-3}$ м", "5 л", "i", "a length, not a volume"),
        ("Ответ: 1 г/см^3", "1000 кг/м^3", "c", "density in g/cm³"),
        ("Ответ: 4200 Дж/(кг·°C)", "4.2 кДж/(кг·К)", "c", "specific heat per degree Celsius"),
        ("Ответ: 12 мин", "720 с", "c", "minutes"),
        ("Ответ: 12 с", "720 с", "i", "the minutes were taken as seconds"),
        ("Ответ: 2,5 ч", "9000 с", "c", "hours"),
        (
            "Ответ: $T = 2\\pi \\sqrt{\\frac{l}{g}} \\approx 3{,}14$ с",
            "3.14 с",
            "c",
            "formula, then the rounded value",
            0.01,
        ),
        ("Ответ: \\pi с", "3.14 с", "c", "exact pi seconds", 0.01),
        ("Ответ: 3 с", "3.14 с", "i", "rounded to one digit: 4.5% off", 0.01),
        (
            "Ответ: $6{,}67 \\cdot 10^{-11}$ Н·м²/кг²",
            "6.67·10^{-11} Н·м^2/кг^2",
            "c",
            "compound unit with superscripts",
        ),
        ("Найдём ускорение: $a = \\frac{F}{m} = \\frac{", "2 м/с^2", "i", "cut off before any answer"),
        ("Ответ: 2 м/с^2 или 4 м/с^2", "2 м/с^2", "i", "two answers offered"),
    ]
)
