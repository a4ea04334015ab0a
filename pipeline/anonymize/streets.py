"""Street types the address recognizers know, as plain data (no imports).

* `USPS_SUFFIXES`: the street suffixes of USPS Publication 28, appendix C1 — the primary name,
  its common spellings and the standard abbreviation (`AVENUE`, `AV`, `AVE`, `AVEN`, ...),
  plus the plurals that C1 lists (`HEIGHTS`, `PARKWAYS`, ...), and the British ones beside them.
* `PREFIX_TYPES`: European street types written *before* the name (`rue de la Paix`,
  `Calle Mayor`, `Via Roma`, `ul. Kwiatowa`, `Rua Augusta`), with the Spanish types of vía of the
  Spanish cadastre and INE street directory (`Pasadizo`, `Vial`, `Glorieta`, `Urbanización`) and
  the Brazilian types of logradouro of the Correios address directory (`Viela`, `Passarela`,
  `Recanto`, `Condomínio`, `Chácara`, `Pátio`, `Lagoa`, `Parque`); `PREFIX_ABBREVIATIONS` are
  their abbreviated forms, which only count with their full stop (`R. Mota, 65`, `C. Mayor 5`).
* `POSTFIX_TYPES`: types written as a separate word *after* the name (`Kossuth utca`,
  `Næsbyholm Allé`), and `COMPOUND_ENDINGS`: endings fused to the name (`Hauptstraße`,
  `Fechnergasse`, `Kerkstraat`, `Storgatan`, `Degnemosevej`).
"""

USPS_SUFFIXES = frozenset(
    """
    allee alley ally aly anex annex annx anx arc arcade av ave aven avenu avenue avn avnue bayoo bayou
    bch beach bend bnd blf bluf bluff bluffs blfs bot btm bottm bottom blvd boul boulevard boulv br brnch
    branch brdge brg bridge brk brook brooks brks burg burgs bg bgs byp bypa bypas bypass byps camp cp cmp
    canyn canyon cnyn cyn cape cpe causeway causwa cswy cen cent center centr centre cnter cntr ctr
    centers ctrs cir circ circl circle crcl crcle circles cirs clf cliff clfs cliffs clb club common cmn
    commons cmns cor corner corners cors course crse court ct courts cts cove cv coves cvs creek crk
    crescent cres crsent crsnt crest crst crossing crssng xing crossroad xrd crossroads xrds curve curv
    dale dl dam dm div divide dv dvd dr driv drive drv drives drs est estate estates ests exp expr
    express expressway expw expy ext extension extn extnsn exts extensions fall falls fls ferry frry fry
    field fld fields flds flat flt flats flts ford frd fords frds forest forests frst forg forge frg
    forges frgs fork frk forks frks fort frt ft freeway freewy frway frwy fwy garden gardn grden grdn gdn
    gardens gdns grdns gateway gatewy gatway gtway gtwy glen gln glens glns green grn greens grns grov
    grove grv groves grvs harb harbor harbr hbr hrbor harbors hbrs haven hvn ht hts heights highway
    highwy hiway hiwy hway hwy hill hl hills hls hllw hollow hollows holw holws inlt inlet is island
    islnd iss islands islnds isle isles jct jction jctn junction junctn juncton jctns jcts junctions key
    ky keys kys knl knol knoll knls knolls lk lake lks lakes land landing lndg lndng lane ln lgt light
    lgts lights lf loaf lck lock lcks locks ldg ldge lodg lodge loop loops lp mall mnr manor manors mnrs
    meadow mdw meadows mdws medows mews mill ml mills mls missn msn mission mssn motorway mtwy mnt mt
    mount mntain mntn mountain mountin mtin mtn mntns mountains mtns nck neck nk orch orchard orchrd
    oval ovl overpass opas park prk parks parkway parkwy pkway pkwy pky parkways pkwys pass passage psge
    path paths pike pikes pine pne pines pnes pl place plain pln plains plns plaza plz plza point pt pts
    points port prt ports prts pr prairie prr rad radial radiel radl ramp ranch ranches rnch rnchs rapid
    rpd rapids rpds rest rst rdg rdge ridge ridges rdgs riv river rvr rivr rd road roads rds route rte
    row rue run shl shoal shls shoals shoar shore shr shoars shores shrs skyway skwy spg spng spring
    sprng spgs spngs springs sprngs spur spurs sq sqr sqre squ square sqs squares sta station statn stn
    stra strav straven stravenue stravn strvn strvnue stream streme strm st strt street str streets sts
    smt sumit sumitt summit ter terr terrace throughway trwy trace traces trce track tracks trak trk
    trks trafficway trfy trail trails trl trls trailer trlr trlrs tunel tunl tunls tunnel tunnels tunnl
    trnpk turnpike turnpk underpass upas un union unions uns valley vally vlly vly valleys vlys vdct via
    viadct viaduct view vw views vws vill villag village villg villiage vlg villages vlgs ville vl vis
    vist vista vst vsta walk walks wk wall way wy ways well wl wells wls
    close parade vale grange drove gate hey rise walkway wynd
    """.split()
)

PREFIX_TYPES = frozenset(
    """
    rue avenue av boulevard bd bld chemin impasse imp place pl allée allee quai route rte cours square
    passage sentier voie rond-point faubourg fg
    calle c/ avenida avda paseo pasaje plaza plza camino carretera ctra ronda rambla travesía travesia
    glorieta cuesta callejón callejon urbanización urbanizacion alameda acceso vía cañada
    via viale piazza piazzale corso vicolo largo strada contrada borgo incrocio canale stretto rotonda
    lungomare salita vico
    rua praça praca travessa estrada largo ladeira rodovia viaduto praia avenida beco vila jardim
    ul ulica al aleja pl plac os osiedle
    pasadizo vial bulevar costanilla escalinata plazuela polígono poligono prolongación prolongacion
    subida bajada senda sendero paraje ribera muelle carrera autopista barrio sector jardín lugar
    aeroporto alameda área campo chácara chacara colônia colonia condomínio condominio conjunto
    distrito esplanada estação estacao fazenda feira lago lagoa loteamento morro núcleo nucleo parque
    passarela pátio patio quadra recanto residencial setor sítio sitio trecho trevo vale vereda viela
    """.split()
)
#: Abbreviated street types, matched only with their full stop (`R. Mota, 65`, `Tv. Lopes 5`).
PREFIX_ABBREVIATIONS = frozenset(
    "r. c. av. avda. pza. pº. ctra. trav. tv. estr. rod. al. pl. ul. os. pç. lgo. pq. cond. res.".split()
)

POSTFIX_TYPES = frozenset(
    """
    utca u út útja tér tere körút krt köz sor sétány fasor rakpart lejtő lépcső liget dűlő udvar park
    allé vej gade plads vænge stræde
    straße strasse str weg platz allee gasse ring damm
    straat laan weg plein gracht kade singel dijk
    gatan vägen väg gata gränd torg torget
    """.split()
)

COMPOUND_ENDINGS = (
    "straße",
    "strasse",
    "str.",
    "gasse",
    "weg",
    "platz",
    "allee",
    "ring",
    "damm",
    "ufer",
    "steig",
    "pfad",
    "markt",
    "chaussee",
    "straat",
    "laan",
    "plein",
    "gracht",
    "kade",
    "singel",
    "dijk",
    "steeg",
    "baan",
    "dreef",
    "hof",
    "pad",
    "wal",
    "gatan",
    "vägen",
    "gränd",
    "torget",
    "stigen",
    "backen",
    "gata",
    "vej",
    "gade",
    "stræde",
    "plads",
    "vænge",
    "parken",
    "toften",
    "bakken",
    "haven",
    "høj",
    "boulevard",
    "plantsoen",
    "hage",
    "vænget",
)

#: Words that say a unit inside a building (`Apt 5`, `Suite 300`, `Piano 3`, `Puerta 2`).
UNIT_WORDS = frozenset(
    """
    apt apartment suite ste unit flat fl floor room rm bldg building # no nr piano appartamento interno
    int scala puerta piso escalera esc bajo planta étage etage bâtiment bat lok lokal m app studio
    casa bloco lote sala andar
    """.split()
)
